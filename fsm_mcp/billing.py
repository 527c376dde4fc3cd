"""Invoice arithmetic in Decimal, rounded half-up to cents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from fsm_mcp.errors import InvalidInput

CENT = Decimal("0.01")
MAX_TAX_RATE = Decimal("0.30")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    kind: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return cents(self.quantity * self.unit_price)


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: Sequence[Line], tax_rate: Decimal, discount: Decimal) -> Totals:
    """Tax is charged on the discounted subtotal."""
    if not lines:
        raise InvalidInput("line_items", "give at least one line item")
    for i, line in enumerate(lines):
        if not line.description.strip():
            raise InvalidInput(f"line_items[{i}].description", "must not be empty; say what was done or supplied")
        if line.quantity <= 0:
            raise InvalidInput(f"line_items[{i}].quantity", "must be greater than 0; use discount to take money off")
        if line.unit_price < 0:
            raise InvalidInput(f"line_items[{i}].unit_price", "must not be negative; use discount to take money off")
    if tax_rate < 0 or tax_rate > MAX_TAX_RATE:
        raise InvalidInput(
            "tax_rate", f"is a fraction between 0 and {MAX_TAX_RATE} (0.0825 for 8.25 %); got {tax_rate}"
        )
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    discount = cents(discount)
    if discount < 0:
        raise InvalidInput("discount", "is an amount of money to take off and must not be negative")
    if discount > subtotal:
        raise InvalidInput("discount", f"{discount} is more than the subtotal {subtotal}; lower it")
    tax = cents((subtotal - discount) * tax_rate)
    return Totals(subtotal, discount, tax_rate, tax, cents(subtotal - discount + tax))
