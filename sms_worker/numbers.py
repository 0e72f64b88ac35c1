"""What a phone number or a sender ID says of itself, for routing and for the adapters' own checks."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


def is_alphanumeric(sender: str) -> bool:
    """A phone number (``+`` and digits) is not; anything with another character is."""
    return not sender.removeprefix("+").isdigit()


@lru_cache(maxsize=65536)
def country_of(recipient: str) -> str | None:
    """ISO 3166 code of an E.164 number's country, or None.

    Most country codes belong to one country, and the code alone says which (a few µs per
    message less at enqueue); shared ones (+1, +7, +44...) need the whole number parsed."""
    digits = recipient.removeprefix("+")
    if not digits.isdigit():
        return None
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length]))
        if regions:
            if len(regions) == 1:
                return _geographic(regions[0])
            break
    try:
        return _geographic(phonenumbers.region_code_for_number(phonenumbers.parse(recipient, None)))
    except phonenumbers.NumberParseException:
        return None


def _geographic(region: str | None) -> str | None:
    """Non-geographic numbers (+800, +882...) have region "001": no country to route by."""
    return region if region and region not in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY) else None
