"""Countries: ISO 3166-1 alpha-2 codes, as assigned (pycountry's table), not just two letters."""

from __future__ import annotations

import pycountry

from creditflow.kit.errors import InvalidRequest


def country_code(value: object, param: str = "country") -> str:
    """The assigned ISO 3166-1 alpha-2 code `value` names, upper case; InvalidRequest naming
    `param` otherwise ("de" is DE; "XX", "ÄÖ", "DEU" are refused)."""
    if not isinstance(value, str) or len(value) != 2 or not value.isascii() or not value.isalpha():
        raise InvalidRequest(f"{param} must be an ISO 3166-1 two-letter country code, like DE or US", param=param)
    if pycountry.countries.get(alpha_2=value.upper()) is None:
        raise InvalidRequest(f"{param} {value!r} is not an assigned ISO 3166-1 country code", param=param)
    return value.upper()
