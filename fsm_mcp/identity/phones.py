"""Phone numbers to E.164 with `phonenumbers`; extensions kept apart."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True, slots=True)
class ParsedPhone:
    e164: str
    extension: str | None = None


class InvalidPhone(ValueError):
    pass


def parse_phone(raw: str, region: str = "US") -> ParsedPhone:
    """Parse a number written any common way; raise InvalidPhone when it cannot be dialled."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("is empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        # "12175550143" in a non-NANP region arrives as a national number; try it as +1.
        digits = "".join(ch for ch in text if ch.isdigit())
        if region != "US" and len(digits) == 11 and digits.startswith("1"):
            return parse_phone("+" + digits, region)
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
