"""CPF numbers: checked by their two check digits, kept and shown only masked."""

import re


def cpf_digits(value: str) -> str:
    """Only the ASCII digits 0-9 of `value`: digits of other scripts (Arabic-Indic,
    full-width…) are dropped, never read as a CPF — a printer could not print them."""
    return re.sub(r"[^0-9]", "", value or "")


def cpf_valid(value: str) -> bool:
    """True for an 11-digit CPF whose check digits match (repeated digits are invalid)."""
    digits = cpf_digits(value)
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    numbers = [int(d) for d in digits]
    for position in (9, 10):
        total = sum(
            n * w for n, w in zip(numbers[:position], range(position + 1, 1, -1), strict=True)
        )
        check = (total * 10) % 11 % 10
        if numbers[position] != check:
            return False
    return True


def cpf_mask(value: str) -> str:
    """Only the last two digits survive: ***.***.***-09."""
    digits = cpf_digits(value)
    return f"***.***.***-{digits[-2:]}" if len(digits) == 11 else ""


def name_mask(name: str) -> str:
    """What a printed ticket shows of a name: the first name and the initial of the last
    ("Iñés Conceição Souza" → "Iñés S.")."""
    parts = (name or "").split()
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0][:20]
    return f"{parts[0][:20]} {parts[-1][0]}."
