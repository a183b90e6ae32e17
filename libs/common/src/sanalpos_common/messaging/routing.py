"""One table per service from event type to handler; the consumer's topics follow from it.

    HANDLERS = HandlerTable({PaymentScored: on_scored, ReviewResolved: on_review_resolved})
    platform.consume_table(HANDLERS, consumer="authorization")

A handler takes the unit of work and the typed envelope. Adding an event type to a service is
one line in its table: no topic strings, no if/elif chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import topic_of

RoutedHandler = Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]


class HandlerTable(Mapping[type[BaseModel], RoutedHandler]):
    """Routes a decoded message to the handler of its payload's type."""

    def __init__(self, handlers: Mapping[type[BaseModel], RoutedHandler]) -> None:
        self._handlers = dict(handlers)
        self.topics: tuple[str, ...] = tuple(topic_of(model) for model in self._handlers)

    def __getitem__(self, model: type[BaseModel]) -> RoutedHandler:
        return self._handlers[model]

    def __iter__(self) -> Iterator[type[BaseModel]]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    async def __call__(self, uow: UnitOfWork, topic: str, envelope: Envelope[Any]) -> None:
        handler = self._handlers.get(type(envelope.payload))
        if handler is None:
            # The consumer subscribes only to this table's topics, so this is a bug upstream.
            raise LookupError(f"no handler for {type(envelope.payload).__name__} on {topic}")
        await handler(uow, envelope)
