"""A client of a node's data access routes (:mod:`genofed.access.dac_api`), for the CLI.

Every method returns the node's JSON answer; a refusal becomes :class:`AccessClientError`
carrying the node's own ``detail`` (what is wrong and the fix), so the CLI can print it as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from genofed import __version__
from genofed.errors import GenofedError

TIMEOUT = httpx.Timeout(30.0)


class AccessClientError(GenofedError):
    """The node refused a request (``status``: its HTTP status; 0 when it did not answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AccessClient:
    """The node's request, decision and grant routes over any httpx client."""

    def __init__(self, http: httpx.Client, token: str | None) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def connect(cls, url: str, token: str | None) -> AccessClient:
        headers = {"User-Agent": f"genofed/{__version__}"}
        return cls(httpx.Client(base_url=url, timeout=TIMEOUT, headers=headers), token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AccessClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # -- requesters ------------------------------------------------------------------------------

    def request_access(
        self,
        datasets: Sequence[str],
        *,
        title: str,
        purpose: dict[str, Any],
        duration_days: int,
    ) -> dict[str, Any]:
        body = {
            "datasets": list(datasets),
            "title": title,
            "purpose": purpose,
            "duration_days": duration_days,
        }
        return self._object("POST", "/access/requests", "requesting access", json=body)

    def my_requests(self) -> list[dict[str, Any]]:
        return self._list("GET", "/access/requests", "listing your requests")

    def request(self, request_id: str) -> dict[str, Any]:
        return self._object("GET", f"/access/requests/{_segment(request_id)}", "reading a request")

    def update_item(
        self,
        request_id: str,
        item_id: int,
        *,
        title: str | None = None,
        purpose: dict[str, Any] | None = None,
        duration_days: int | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "title": title,
            "purpose": purpose,
            "duration_days": duration_days,
            "comment": comment,
        }
        path = f"/access/requests/{_segment(request_id)}/items/{item_id}"
        return self._object("PATCH", path, "updating the request", json=_given(body))

    def withdraw(
        self, request_id: str, *, item: int | None = None, comment: str | None = None
    ) -> dict[str, Any]:
        path = f"/access/requests/{_segment(request_id)}/withdraw"
        body = _given({"item": item, "comment": comment})
        return self._object("POST", path, "withdrawing the request", json=body)

    # -- DAC members -----------------------------------------------------------------------------

    def dac_queue(self, status: str | None = None) -> dict[str, Any]:
        params = {"status": status} if status else {}
        return self._object("GET", "/dac/requests", "listing requests", params=params)

    def dac_item(self, item_id: int) -> dict[str, Any]:
        return self._object("GET", f"/dac/requests/{item_id}", f"reading item {item_id}")

    def approve(
        self,
        item_id: int,
        *,
        days: int | None = None,
        comment: str | None = None,
        acknowledge_mismatches: bool = False,
    ) -> dict[str, Any]:
        body = _given(
            {
                "days": days,
                "comment": comment,
                "acknowledge_mismatches": acknowledge_mismatches,
            }
        )
        path = f"/dac/requests/{item_id}/approve"
        return self._object("POST", path, f"approving item {item_id}", json=body)

    def reject(self, item_id: int, *, comment: str) -> dict[str, Any]:
        path = f"/dac/requests/{item_id}/reject"
        return self._object("POST", path, f"rejecting item {item_id}", json={"comment": comment})

    def request_changes(self, item_id: int, *, comment: str) -> dict[str, Any]:
        path = f"/dac/requests/{item_id}/request-changes"
        doing = f"requesting changes to item {item_id}"
        return self._object("POST", path, doing, json={"comment": comment})

    def revoke(self, grant_or_item: str, *, comment: str) -> dict[str, Any]:
        """Revoke a grant named by its id, or by its item's number."""
        reference = grant_or_item.strip()
        path = (
            f"/dac/requests/{reference}/revoke"
            if reference.isdigit()
            else f"/dac/grants/{_segment(reference)}/revoke"
        )
        doing = f"revoking {reference}"
        return self._object("POST", path, doing, json={"comment": comment})

    def grants(self, *, active: bool = False) -> list[dict[str, Any]]:
        params = {"active": "true"} if active else {}
        return self._list("GET", "/dac/grants", "listing grants", params=params)

    # -- operators -------------------------------------------------------------------------------

    def members(self, dac: str) -> dict[str, Any]:
        return self._object("GET", f"/dac/{_segment(dac)}/members", f"listing DAC {dac}")

    def add_member(self, dac: str, subject: str) -> dict[str, Any]:
        path = f"/dac/{_segment(dac)}/members"
        doing = f"adding {subject} to DAC {dac}"
        return self._object("POST", path, doing, json={"subject": subject})

    def remove_member(self, dac: str, subject: str) -> dict[str, Any]:
        path = f"/dac/{_segment(dac)}/members/{_segment(subject)}"
        return self._object("DELETE", path, f"removing {subject} from DAC {dac}")

    # -- HTTP ------------------------------------------------------------------------------------

    def _object(self, method: str, path: str, doing: str, **options: Any) -> dict[str, Any]:
        body = self._call(method, path, doing, **options)
        if not isinstance(body, dict):
            raise AccessClientError(f"{doing}: the node answered an unexpected {type(body)}")
        return body

    def _list(self, method: str, path: str, doing: str, **options: Any) -> list[dict[str, Any]]:
        body = self._call(method, path, doing, **options)
        if not isinstance(body, list):
            raise AccessClientError(f"{doing}: the node answered an unexpected {type(body)}")
        return body

    def _call(self, method: str, path: str, doing: str, **options: Any) -> Any:
        try:
            response = self._http.request(method, path, headers=self._auth, **options)
        except httpx.TransportError as error:
            raise AccessClientError(
                f"{doing}: no answer from the node ({type(error).__name__}: {error}); check "
                "the URL and your network"
            ) from error
        if not response.is_success:
            raise AccessClientError(
                f"{doing}: the node answered {response.status_code}: {_detail(response)}",
                response.status_code,
            )
        return response.json()


def _detail(response: httpx.Response) -> str:
    """The node's ``detail``: its sentence, or FastAPI's list of invalid fields as one line."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(detail, list):
        return "; ".join(_field_error(error) for error in detail) or "invalid request"
    return str(detail)


def _field_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


def _segment(value: str) -> str:
    """``value`` as one path segment."""
    return quote(value, safe="")


def _given(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}
