"""One SASL conversation on a socket: ``saslStart`` / ``saslContinue`` and their replies.

``auth.authenticate`` drives it with a ``ScramClient`` (whose ``error`` builds every
``AuthenticationError``, its secrets masked). Each reply is checked here: its fields
(``replies.sasl``: a malformed one is an ``AuthenticationProtocolError``), then its ``ok``,
and every reply after the first must name the same ``conversationId``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from wireclient.errors import AuthenticationProtocolError, ProtocolError
from wireclient.rules.replies import SaslReply, describe, fail, sasl
from wireclient.rules.uri import format_address
from wireclient.transport.steps import Steps


class SaslConversation:
    """Sends saslStart/saslContinue on the source database and checks each reply: its
    fields (``replies.sasl``: an ``AuthenticationProtocolError`` when malformed), then its
    ``ok``."""

    __slots__ = ("sock_info", "source", "scram", "conversation_id", "address")

    def __init__(self, sock_info: Any, source: str, scram: Any) -> None:
        self.sock_info = sock_info
        self.source = source
        self.scram = scram
        self.conversation_id: Optional[int] = None
        address = getattr(sock_info, "address", None)
        self.address = format_address(address) if address is not None else None

    def send(self, spec: Mapping[str, Any]) -> Steps[Tuple[SaslReply, Dict[str, Any]]]:
        reply: Optional[Dict[str, Any]] = yield from self.sock_info.command(self.source, spec)
        if reply is None:
            raise self.scram.error("the server sent no reply")
        return self.check(next(iter(spec)), reply)

    def malformed(self, name: str, problem: str) -> AuthenticationProtocolError:
        masked = self.scram.error(f"{describe(name, self.address)}: {problem}")
        return AuthenticationProtocolError(str(masked), None, masked.details)

    def check(self, name: str, reply: Dict[str, Any]) -> Tuple[SaslReply, Dict[str, Any]]:
        """``reply`` (to ``name``) checked: its SASL fields, then its ``ok``."""
        where = describe(name, self.address)
        try:
            step = sasl(reply, where)
            known = self.conversation_id
            if step is not None and known is not None and step.conversation_id != known:
                raise fail(where, "conversationId", f"is {step.conversation_id}, not {known}")
        except ProtocolError as exc:
            masked = self.scram.error(str(exc), reply)  # no payload, nonce or proof shown
            raise AuthenticationProtocolError(str(masked), None, masked.details) from None
        if step is None:
            code = reply.get("code")
            message = str(reply.get("errmsg", "unknown error"))
            raise self.scram.error(message, reply, code if isinstance(code, int) else None)
        self.conversation_id = step.conversation_id
        return step, reply

    def send_continue(self, payload: bytes) -> Steps[Tuple[SaslReply, Dict[str, Any]]]:
        return (
            yield from self.send(
                {"saslContinue": 1, "conversationId": self.conversation_id, "payload": payload}
            )
        )


__all__ = ["SaslConversation"]
