"""PIX copy-and-paste codes (BR Code): TLV fields closed by a CRC16/CCITT-FALSE."""

import binascii
from decimal import Decimal


def _tlv(field_id: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"field {field_id} is longer than 99 characters")
    return f"{field_id}{len(value):02d}{value}"


def pix_crc(payload: str) -> str:
    return f"{binascii.crc_hqx(payload.encode('ascii'), 0xFFFF):04X}"


def pix_code(
    *, key: str, amount: Decimal | None, name: str, city: str, txid: str, message: str = ""
) -> str:
    """A static BR Code with the given key, amount and transaction id (ASCII only)."""
    account = _tlv("00", "br.gov.bcb.pix") + _tlv("01", key)
    if message:
        account += _tlv("02", message[:40])
    payload = _tlv("00", "01") + _tlv("26", account) + _tlv("52", "0000") + _tlv("53", "986")
    if amount is not None:
        payload += _tlv("54", f"{Decimal(amount):.2f}")
    payload += _tlv("58", "BR") + _tlv("59", name[:25]) + _tlv("60", city[:15])
    payload += _tlv("62", _tlv("05", txid[:25] or "***"))
    payload += "6304"
    return payload + pix_crc(payload)


def pix_code_valid(code: str) -> bool:
    """Whether the code ends with the right CRC over everything before it."""
    return len(code) > 8 and code[-8:-4] == "6304" and pix_crc(code[:-4]) == code[-4:]


def pix_fields(code: str) -> dict[str, str]:
    """The top-level TLV fields of a code (for tests and display)."""
    fields, i = {}, 0
    while i + 4 <= len(code):
        field_id, length = code[i : i + 2], int(code[i + 2 : i + 4])
        fields[field_id] = code[i + 4 : i + 4 + length]
        i += 4 + length
    return fields
