"""SigV4 signing of OTLP/HTTP requests, for X-Ray's OTLP endpoint, by botocore's signer.

Its own module because only an exporter with a SigV4 region loads it: every
other OTLP/HTTP export would otherwise pay, at each cold start, for a class
and code it never runs (`otlp_http` imports this at the first signature, or
in `prepare`). botocore is imported here, never at import (the Lambda runtime
ships it; this package does not).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SigV4Signer"]

_SIGNED = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


class SigV4Signer:
    """botocore's SigV4 signer, loaded once, with refreshable credentials."""

    def __init__(self, region: str, service: str) -> None:
        import botocore.session

        self.region = region
        self.service = service
        self._credentials = botocore.session.get_session().get_credentials()

    def headers(self, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers that sign a ``POST`` of `body` to `url` with `headers`.

        Raises:
            ExportError: ``AUTH`` when no credentials were found.
        """
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.AUTH, "no AWS credentials found for SigV4 signing")
        credentials = self._credentials.get_frozen_credentials()
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials, self.service, self.region).add_auth(request)
        return {name: str(request.headers[name]) for name in _SIGNED if name in request.headers}
