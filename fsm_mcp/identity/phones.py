"""Phone numbers to E.164 with `phonenumbers`; extensions kept apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumber


@dataclass(frozen=True, slots=True)
class ParsedPhone:
    e164: str
    extension: str | None = None


class InvalidPhone(ValueError):
    pass


_NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
_LAYOUT = str.maketrans("", "", " ()-.")
_NANP_SHAPE = re.compile(r"(\+1|1)?([2-9]\d{9})")


def parse_phone(raw: str, region: str = "US") -> ParsedPhone:
    """Parse a number written any common way; raise InvalidPhone when it cannot be dialled."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("is empty")
    if (e164 := _north_american(text, region)) is not None:
        return ParsedPhone(e164)
    return parse_phone_in_general(raw, region)


def _north_american(text: str, region: str) -> str | None:
    """The shapes a North American caller ID arrives in ("+12175550143", "(217) 555-0143",
    "1 217 555 0143"), read without the general parser, which costs five times as much on
    the lookup a phone call waits for. Whether the number is valid is still the library's
    answer; anything else, or a number not valid in the business's own region, goes the
    general way (tests hold the two paths to the same answers)."""
    shape = _NANP_SHAPE.fullmatch(text.translate(_LAYOUT))
    if shape is None or (shape[1] != "+1" and region not in _NANP_REGIONS):
        return None
    number = PhoneNumber(country_code=1, national_number=int(shape[2]))
    return f"+1{shape[2]}" if phonenumbers.is_valid_number_for_region(number, region) else None


def parse_phone_in_general(raw: str, region: str = "US") -> ParsedPhone:
    """The library's general parser: any layout, any region, extensions."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        # "12175550143" in a non-NANP region arrives as a national number; try it as +1.
        digits = "".join(ch for ch in text if ch.isdigit())
        if region != "US" and not text.startswith("+") and len(digits) == 11 and digits.startswith("1"):
            return parse_phone_in_general("+" + digits, region)
        raise InvalidPhone(
            f"{raw!r} is not a valid number for region {region}; "
            "give the full number with area code, or with a leading +country code"
        )
    return ParsedPhone(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        number.extension or None,
    )


def try_parse_phone(raw: str | None, region: str = "US") -> ParsedPhone | None:
    if not raw:
        return None
    try:
        return parse_phone(raw, region)
    except InvalidPhone:
        return None
