from intake.domain.payment import PaymentStatus, advances


def test_status_only_moves_forward() -> None:
    assert advances(PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)
    assert advances(PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED)
    assert advances(PaymentStatus.PENDING, PaymentStatus.SETTLED)
    assert not advances(PaymentStatus.SETTLED, PaymentStatus.CAPTURED)
    assert not advances(PaymentStatus.CAPTURED, PaymentStatus.AUTHORIZED)
    assert not advances(PaymentStatus.CAPTURED, PaymentStatus.CAPTURED)


def test_declined_is_terminal() -> None:
    for status in PaymentStatus:
        assert not advances(PaymentStatus.DECLINED, status)
