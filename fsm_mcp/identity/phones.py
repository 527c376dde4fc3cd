"""Phone numbers to E.164 with `phonenumbers`; extensions kept apart."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc


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
    answer, read from its metadata in one match (`_valid_in`); anything else, or a number not
    valid in the business's own region, goes the general way (tests hold the two paths to the
    same answers)."""
    shape = _NANP_SHAPE.fullmatch(text.translate(_LAYOUT))
    if shape is None or region not in _NANP_REGIONS:  # "+1..." in another region: the library's answer
        return None
    return f"+1{shape[2]}" if _valid_in(region)(shape[2]) else None


_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line", "mobile")


@cache
def _valid_in(region: str) -> Callable[[str], bool]:
    """`phonenumbers.is_valid_number_for_region` for a national number of a region of country code 1, from the
    same metadata with the same rule, in one match: the number fits the region's general pattern and the
    pattern of some type of number (the library tries the types one by one, ten calls deep, and an import of
    a million numbers spent half a minute there). Tests hold it to the library's answers."""
    metadata = PhoneMetadata.metadata_for_region(region)
    assert metadata is not None and metadata.country_code == 1, region
    descs = [getattr(metadata, kind) for kind in _TYPES
             if not (kind == "mobile" and metadata.same_mobile_and_fixed_line_pattern)]  # the library skips it then

    def pattern(desc: PhoneNumberDesc | None, length: int) -> str | None:
        """The desc's pattern if a national number of this length may match it."""
        if desc is None or not desc.national_number_pattern or (desc.possible_length and length not in desc.possible_length):
            return None
        return str(desc.national_number_pattern)

    by_length: dict[int, tuple[re.Pattern[str], re.Pattern[str]] | None] = {}

    def valid(national: str) -> bool:
        length = len(national)
        if length not in by_length:
            general = pattern(metadata.general_desc, length)
            kinds = [p for d in descs if (p := pattern(d, length)) is not None]
            by_length[length] = (re.compile(general), re.compile("|".join(f"(?:{k})" for k in kinds))) \
                if general is not None and kinds else None
        patterns = by_length[length]
        return patterns is not None and patterns[0].fullmatch(national) is not None and \
            patterns[1].fullmatch(national) is not None

    return valid


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
