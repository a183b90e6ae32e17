"""The issuer simulator's published test cards (README.md), kept in this one seed module.

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
)
