from sanalpos_common.schemas.codec import decode, encode
from sanalpos_common.schemas.envelope import Envelope, RawEnvelope

__all__ = ["Envelope", "RawEnvelope", "decode", "encode"]
