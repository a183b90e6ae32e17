"""The issuer simulator's published test cards (README.md, docs/3d-secure.md), kept in this
one seed module.

Only the simulator knows these numbers; its tables hold an HMAC of each, never the number.
"""

from authorization.domain.issuer import Behaviour, SimulatorCard

SIMULATOR_CARDS: tuple[SimulatorCard, ...] = (
    SimulatorCard("4111111111111111", Behaviour.APPROVE, 1_000_000, note="approves"),
    SimulatorCard("5555555555554444", Behaviour.APPROVE, 1_000_000, note="approves"),
    SimulatorCard(
        "4000000000009995", Behaviour.APPROVE, 10, note="insufficient funds (51) over 10.00"
    ),
    SimulatorCard("4000000000000069", Behaviour.EXPIRED, 1_000_000, 1, 2020, "expired card (54)"),
    SimulatorCard(
        "4000000000000002", Behaviour.DO_NOT_HONOUR, 1_000_000, note="do not honour (05)"
    ),
    # 3-D Secure (docs/3d-secure.md); they approve once authenticated. Their 3DS profile is
    # that of their 8-digit test range (domain/three_ds.py THREE_DS_RANGES).
    SimulatorCard("4000003100000005", Behaviour.APPROVE, 1_000_000, note="3DS frictionless"),
    SimulatorCard("4000003200000004", Behaviour.APPROVE, 1_000_000, note="3DS challenge"),
    SimulatorCard(
        "4000003300000003", Behaviour.APPROVE, 1_000_000, note="3DS challenge that fails"
    ),
    SimulatorCard("4000003400000002", Behaviour.APPROVE, 1_000_000, note="3DS not enrolled"),
    SimulatorCard("4000003500000001", Behaviour.APPROVE, 1_000_000, note="3DS ACS unavailable"),
    SimulatorCard(
        "4000003600000000", Behaviour.APPROVE, 1_000_000, note="3DS required by the issuer"
    ),
    SimulatorCard("5200003100000000", Behaviour.APPROVE, 1_000_000, note="3DS frictionless, MC"),
    SimulatorCard("5200003200000009", Behaviour.APPROVE, 1_000_000, note="3DS challenge, MC"),
)
