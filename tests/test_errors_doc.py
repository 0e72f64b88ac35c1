"""docs/errors.md lists every error code a user can see, each provider's under that provider: the
adapters' tables, the reported-status codes and sms_worker's own codes, enumerated from the code
so that a new one fails here until it is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import sms_worker.providers.registry  # noqa: F401  (imports every adapter, so each is a subclass below)
from sms_worker.dispatch.lookup import COPY_TAKEN, LOOKUP_FAILED
from sms_worker.dispatch.pipeline import DISPATCH_STOPPED
from sms_worker.dispatch.receipts import CHECK_CRASH, NO_RECEIPT, PROVIDER_ID_REUSED
from sms_worker.dispatch.stages.decide import NEAR_MATCH
from sms_worker.dispatch.stages.requests import ADAPTER_CRASH
from sms_worker.dispatch.stages.route import NO_ROUTE
from sms_worker.dispatch.stages.validity import RETRY_WINDOW_OVER
from sms_worker.lifecycle.changes import VALIDITY_EXPIRED
from sms_worker.lifecycle.status import Delivery
from sms_worker.providers.base import AdapterBase
from sms_worker.providers.failures import NO_CODE
from sms_worker.providers.plumbing import BAD_RESPONSE, CONNECT_TIMEOUT, CONNECTION, CONNECTION_LOST, HTTP_PREFIX, TIMEOUT
from sms_worker.providers.registry import ACCOUNT_TYPES
from sms_worker.providers.session_key import BAD_MESSAGE_ID, ORDER_REFUSED, RECIPIENT_NOT_FOUND
from sms_worker.recovery import WORKER_LOST

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
OWN_CODES = [
    NO_ROUTE,
    VALIDITY_EXPIRED,
    RETRY_WINDOW_OVER,
    NEAR_MATCH,
    NO_RECEIPT,
    WORKER_LOST,
    DISPATCH_STOPPED,
    ADAPTER_CRASH,
    LOOKUP_FAILED,
    COPY_TAKEN,
    PROVIDER_ID_REUSED,
    CHECK_CRASH,
    ORDER_REFUSED,
    TIMEOUT,
    CONNECTION_LOST,
    BAD_RESPONSE,
    CONNECT_TIMEOUT,
    CONNECTION,
    BAD_MESSAGE_ID,
    RECIPIENT_NOT_FOUND,
    NO_CODE,
    f"{HTTP_PREFIX}<status>",
]
"""sms_worker's own codes: every one a failure, a final outcome or a status check may carry."""
REPORTED_CODES = [code for delivery in Delivery if (code := delivery.failure_code) is not None]


def adapters() -> dict[str, type[AdapterBase]]:
    """Each account type (``telekom-sk``...) to its adapter: the concrete subclass of
    :class:`AdapterBase` defined in the module of the type's account settings."""
    found, waiting = [], list(AdapterBase.__subclasses__())
    while waiting:
        cls = waiting.pop()
        waiting += cls.__subclasses__()
        if not inspect.isabstract(cls):
            found.append(cls)
    by_type = {name: [cls for cls in found if cls.__module__ == model.__module__] for name, model in ACCOUNT_TYPES.items()}
    assert all(len(classes) == 1 for classes in by_type.values()), by_type
    return {name: classes[0] for name, classes in by_type.items()}


def section(heading: str) -> str:
    """The part of the document under the heading (any level) that contains ``heading``, up to the
    next heading of the same or a higher level."""
    text = DOC.read_text()
    match = re.search(rf"^(#+) [^\n]*{re.escape(heading)}[^\n]*$", text, re.MULTILINE)
    assert match is not None, f"docs/errors.md has no heading with {heading}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def undocumented(codes: list[str], text: str) -> list[str]:
    return [code for code in codes if f"`{code}`" not in text]


def test_every_own_code_and_every_reported_status_code_is_documented():
    own = section("sms_worker's own codes")
    assert len(REPORTED_CODES) == 3
    assert undocumented(OWN_CODES + REPORTED_CODES, own) == []


@pytest.mark.parametrize("account_type", sorted(ACCOUNT_TYPES))
def test_every_code_of_each_adapters_table_is_documented_under_its_provider(account_type):
    codes = [str(code) for code in adapters()[account_type].errors]
    assert codes, f"{account_type}'s adapter has no error table"
    assert undocumented(codes, section(f'`type = "{account_type}"`')) == []


def test_a_code_missing_from_the_document_is_found():
    """The check itself: a code the document does not name is reported."""
    assert undocumented(["NOT_A_CODE_ANYWHERE", "30003"], section('`type = "telefoon"`')) == ["NOT_A_CODE_ANYWHERE"]
    assert undocumented(["30003"], section('`type = "dexatel"`')) == ["30003"]
