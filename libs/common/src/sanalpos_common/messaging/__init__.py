from sanalpos_common.messaging.consumer import ConsumerLoop, NonRetryable
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import build_producer

__all__ = ["ConsumerLoop", "NonRetryable", "OutboxRelay", "build_producer", "idempotent"]
