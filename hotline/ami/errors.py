"""What the AMI client raises: one base class, one subclass per way an action or a link fails."""

from __future__ import annotations

from hotline.ami.protocol import AmiMessage


class AmiError(Exception):
    """Base of everything this client raises."""


class AmiConnectionError(AmiError):
    """No AMI link could be set up: refused, unreachable, no greeting, or not AMI at all."""


class AmiAuthError(AmiConnectionError):
    """Asterisk refused the username or secret."""


class AmiTimeout(AmiError, TimeoutError):
    """No reply within the allowed time."""


class AmiLinkLost(AmiError):
    """The link went down before the reply came, or was down when the action was asked for.
    An action that was already sent may or may not have been carried out."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is its ``Message`` header."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.action = action
        self.response = response
        self.message = response.get("Message", "") or ""
        detail = "; ".join([self.message, *response.getall("Output")])
        super().__init__(f"AMI action {action} failed: {detail}")
