"""The providers file, routing rules and the circuit breaker, each on its own."""

from __future__ import annotations

import tomllib
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import wait_out_cooldown

from sms_worker.addresses import country_of
from sms_worker.providers.accounts import ProvidersFileError, parse_providers
from sms_worker.routing import Breaker, Router
from sms_worker.routing.breaker import Recorded

EXAMPLE = Path(__file__).parent.parent / "providers.example.toml"
ENVIRON = {"SMS_WORKER_SESSION_KEY_PASSWORD": "sandbox-pass"}


def with_password_env(document: dict) -> dict:
    """The example with the session-key password read from SMS_WORKER_SESSION_KEY_PASSWORD, as a
    real account's should be."""
    session_key = document["accounts"]["session-key"]
    session_key["password_env"] = "SMS_WORKER_SESSION_KEY_PASSWORD"
    del session_key["password"]
    return document


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_the_example_file_runs_as_shipped_with_nothing_in_the_environment():
    providers = parse_providers(example(), {})

    assert sorted(providers.accounts) == ["dexatel", "dt-a2p", "session-key", "telefoon", "telekom-sk"]
    session_key = providers.accounts["session-key"]
    assert (session_key.username.get_secret_value(), session_key.password.get_secret_value()) == ("sandbox-user", "sandbox-pass")
    assert (session_key.quality, session_key.max_recipients) == ("N", 100)
    assert providers.accounts["dt-a2p"].senders == {"+4915112345678", "ACME"}
    assert providers.accounts["dt-a2p"].rate == 20
    assert providers.accounts["telekom-sk"].burst == 50


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["accounts"]["dexatel"].pop("type"), "accounts.dexatel.type: is required"),
        (lambda d: d["accounts"]["dexatel"].update(rate=0), "accounts.dexatel.rate: must be a positive number"),
        (lambda d: d["accounts"]["dexatel"].update(senders="ACME"), "accounts.dexatel.senders: must be a list"),
        (lambda d: d["routes"][0].update(accounts={"nobody": 1}), "routes[0].accounts: 'nobody' is not an account"),
        (lambda d: d["routes"][0].update(accounts={"dexatel": -1}), "routes[0].accounts.dexatel: weight must be a positive number"),
        (lambda d: d["routes"][2].update(prefixes=["31"]), "routes[2].prefixes: must be E.164 prefixes"),
        (lambda d: d["routes"][0].pop("countries"), "routes[0]: needs `countries` or `prefixes`"),
        (lambda d: d["routing"].update(default={}), "routing.default: must map account names to weights"),
        (lambda d: d.update(extra={}), "extra: is not a section"),
    ],
)
def test_a_bad_providers_file_is_refused_naming_the_field(change, message):
    document = example()
    change(document)

    with pytest.raises(ProvidersFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_providers(document, ENVIRON, source="providers.toml")


def test_a_credential_from_an_unset_environment_variable_is_refused():
    with pytest.raises(
        ProvidersFileError,
        match="accounts.session-key.password_env: names the environment variable 'SMS_WORKER_SESSION_KEY_PASSWORD', which is not set",
    ):
        parse_providers(with_password_env(example()), {})


def test_a_credential_from_an_environment_variable_is_read_from_it():
    providers = parse_providers(with_password_env(example()), {"SMS_WORKER_SESSION_KEY_PASSWORD": "from the environment"})

    assert providers.accounts["session-key"].password.get_secret_value() == "from the environment"


def test_rules_route_by_country_and_prefix_and_fall_back_to_the_default():
    router = Router(parse_providers(example(), ENVIRON))
    key = uuid.uuid4()

    assert router.candidates("+421901234567", key)[0] == "telekom-sk"
    assert router.candidates("+31612345678", key)[0] == "telefoon"
    german = router.candidates("+4915123456789", key)
    assert set(german[:2]) == {"dt-a2p", "dexatel"}
    assert set(german) == {"dt-a2p", "dexatel", "session-key", "telefoon"}
    assert set(router.candidates("+33612345678", key)) == {"dexatel", "session-key", "telefoon"}


def test_weights_share_the_messages_and_each_message_keeps_its_order():
    router = Router(parse_providers(example(), ENVIRON))
    keys = [uuid.uuid4() for _ in range(8000)]

    first = Counter(router.candidates("+4915123456789", key)[0] for key in keys)

    assert 0.72 < first["dt-a2p"] / len(keys) < 0.78  # weight 3 of 4
    assert all(router.candidates("+4915123456789", key) == router.candidates("+4915123456789", key) for key in keys[:100])


def test_sender_rules_keep_unverified_and_alphanumeric_senders_off_an_account():
    router = Router(parse_providers(example(), ENVIRON))

    def refusal(account: str, recipient: str, sender: str | None) -> str | None:
        refused = router.refusal(account, recipient, sender, "hello")
        return str(refused) if refused else None

    assert refusal("dt-a2p", "+4915123456789", None) is None
    assert refusal("dt-a2p", "+4915123456789", "ACME") is None
    assert refusal("dt-a2p", "+4915123456789", "OTHER") == "account dt-a2p: sender 'OTHER' is not verified"
    assert refusal("dt-a2p", "+33612345678", "ACME") == "account dt-a2p: the alphanumeric sender 'ACME' is not allowed towards FR"
    assert refusal("dt-a2p", "+80012345678", "ACME").endswith("towards this destination")
    assert refusal("dt-a2p", "+33612345678", "+4915112345678") is None
    assert refusal("dexatel", "+33612345678", "ANYONE") is None, "no verified list: any sender within its grammar"


def breaker(redis_client, cooldown: float = 0.3) -> Breaker:
    return Breaker(redis_client, "acct", consecutive_failures=5, window=10, failure_ratio=0.5, cooldown=cooldown)


def test_a_run_of_transient_faults_opens_the_breaker_until_a_probe_succeeds(redis_client):
    b = breaker(redis_client)
    assert b.record([True] * 4) == Recorded("closed", False)
    assert b.admit() == -1

    assert b.record([True], "HTTP_503: down") == Recorded("open", True)
    assert b.admit() == 0
    assert b.state().reason == "HTTP_503: down"

    wait_out_cooldown(redis_client, b)
    assert b.admit() == 1, "one probe once the cooldown is over"
    assert b.admit() == 0, "and only one"
    assert b.record([False]) == Recorded("closed", True)
    assert b.admit() == -1


def test_a_failed_probe_opens_the_breaker_again(redis_client):
    b = breaker(redis_client)
    b.record([True] * 5)
    wait_out_cooldown(redis_client, b)
    assert b.admit() == 1

    assert b.record([True]) == Recorded("open", True)
    assert b.admit() == 0


def test_half_of_the_calls_failing_over_a_full_window_opens_the_breaker(redis_client):
    b = breaker(redis_client)

    assert b.record([True, False] * 4) == Recorded("closed", False)  # the window is not full yet
    assert b.record([True, False]) == Recorded("open", True)
    assert b.state().recent_failures == 5


def test_answers_that_arrive_while_open_do_not_close_it(redis_client):
    b = breaker(redis_client, cooldown=30)
    b.record([True] * 5)

    assert b.record([False] * 3) == Recorded("open", False)
    assert b.admit() == 0


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+421901234567", "SK"),
        ("+4915112345678", "DE"),
        ("+12125551234", "US"),
        ("+14165551234", "CA"),
        ("+77012345678", "KZ"),
        ("+79161234567", "RU"),
        ("+80012345678", None),
        ("+999123", None),
        ("not a number", None),
    ],
)
def test_the_destination_country_comes_from_the_number_even_where_countries_share_a_code(number, country):
    assert country_of(number) == country


@pytest.mark.parametrize(
    ("account", "key", "value", "message"),
    [
        ("dexatel", "rat", 5, "accounts.dexatel.rat: is not an option of type dexatel"),
        ("session-key", "max_recipient", 1, "accounts.session-key.max_recipient: is not an option of type session-key"),
        ("dexatel", "token", "x", "accounts.dexatel.token: type dexatel authenticates with api_key"),
        ("session-key", "quality", "XL", "accounts.session-key.quality: must be 'N', 'L' or 'LL'"),
        ("telekom-sk", "use_session", 1, "accounts.telekom-sk.use_session: must be true or false"),
        ("dexatel", "rate", "5", "accounts.dexatel.rate: must be a positive number"),
    ],
)
def test_a_key_the_account_type_does_not_know_is_refused_naming_it(account, key, value, message):
    document = example()
    document["accounts"][account][key] = value

    with pytest.raises(ProvidersFileError, match=message):
        parse_providers(document, ENVIRON)


def test_every_problem_of_the_file_is_named_on_a_line_of_its_own():
    document = example()
    document["accounts"]["dexatel"].update(rate=0, default_sender="much too long a sender")
    document["routes"][0]["accounts"] = {"nobody": 1}

    with pytest.raises(ProvidersFileError) as caught:
        parse_providers(document, ENVIRON, source="providers.toml")

    assert str(caught.value).splitlines() == [
        "providers.toml: accounts.dexatel.rate: must be a positive number of messages per second",
        "providers.toml: accounts.dexatel.default_sender: alphanumeric sender 'much too long a sender' is longer than 11 characters",
        "providers.toml: routes[0].accounts: 'nobody' is not an account (dexatel, dt-a2p, session-key, telefoon, telekom-sk)",
    ]


def test_a_run_of_faults_inside_one_batch_opens_the_breaker_even_if_the_batch_ends_well(redis_client):
    b = breaker(redis_client)

    assert b.record([False, True, True, True, True, True, False]) == Recorded("open", True)
