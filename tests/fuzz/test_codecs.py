"""Property tests of the byte-level codecs: NOWPayments' byte-faithful signature, the PIX
copy-and-paste code's CRC, and CPF check digits.

Each property is checked against a reference written here from the provider's or the
standard's own description, not against the module under test.
"""

import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from fakeproviders.pix import pix_code, pix_code_valid, pix_crc, pix_fields
from payments.providers import InboundRequest, SignatureInvalid
from payments.providers.nowpayments import (
    NowPaymentsAdapter,
    parse_faithful,
    serialise_sorted,
    signature_valid,
)
from tickets.cpf import cpf_digits, cpf_mask, cpf_valid

SECRET = "nowpayments-ipn-secret-for-tests"

# --- NOWPayments: a JSON tree whose numbers are tokens, written as the provider would ------


class Num(str):
    """A number exactly as the provider wrote it."""


def _number_forms(value: float) -> list[str]:
    """Several JSON spellings of (about) one number: JavaScript's, Python's, exponents."""
    forms = {json.dumps(value), repr(value), f"{value:e}", f"{value:E}", f"{value:.10f}"}
    if value == int(value) and abs(value) < 1e15:
        forms.add(str(int(value)))
    return sorted(f for f in forms if _is_json_number(f))


def _is_json_number(text: str) -> bool:
    try:
        parsed = json.loads(text, parse_float=str, parse_int=str, parse_constant=lambda _: None)
    except ValueError:
        return False
    return parsed == text


numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).flatmap(
        lambda f: st.sampled_from(_number_forms(f))
    ),
    st.sampled_from(["6.35e-05", "0.0000635", "100.0", "100", "1E+2", "-0", "-0.0", "1e400"]),
).map(Num)
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]),  # lone surrogates: see below
    max_size=12,
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(texts, inner, max_size=5),
    ),
    max_leaves=12,
)
ipns = st.dictionaries(texts, trees, min_size=1, max_size=6)


def _write(value, *, order, spaces: str = "") -> str:
    """The tree as JSON text, dict keys in the order `order` gives (the body as sent)."""
    if isinstance(value, dict):
        keys = order(list(value))
        items = (
            f"{spaces}{json.dumps(k, ensure_ascii=False)}{spaces}:{spaces}"
            f"{_write(value[k], order=order, spaces=spaces)}"
            for k in keys
        )
        return "{" + ",".join(items) + spaces + "}"
    if isinstance(value, list):
        return "[" + ",".join(_write(v, order=order, spaces=spaces) for v in value) + "]"
    if isinstance(value, Num):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _sign(tree, *, ensure_ascii: bool = False) -> str:
    """NOWPayments' signature: HMAC-SHA512 of the compact, key-sorted serialisation."""

    def canonical(value) -> str:
        if isinstance(value, dict):
            inner = ",".join(
                json.dumps(k, ensure_ascii=ensure_ascii) + ":" + canonical(value[k])
                for k in sorted(value)
            )
            return "{" + inner + "}"
        if isinstance(value, list):
            return "[" + ",".join(canonical(v) for v in value) + "]"
        if isinstance(value, Num):
            return str(value)
        return json.dumps(value, ensure_ascii=ensure_ascii)

    return hmac.new(SECRET.encode(), canonical(tree).encode(), hashlib.sha512).hexdigest()


def _paths(value, path=()):
    """Every leaf that is a number or a non-empty string, with its path."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))
    elif isinstance(value, str) and value:
        yield path


def _replace(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _get(value, path):
    for part in path:
        value = value[part]
    return value


def _verify(body: bytes, signature: str | None) -> None:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-nowpayments-sig"] = signature
    NowPaymentsAdapter().verify(
        InboundRequest(headers=headers, query={}, body=body, received_at=datetime.now(UTC))
    )


@given(tree=ipns, data=st.data())
@settings(max_examples=60)
def test_nowpayments_signature_of_the_sorted_serialisation_always_verifies(tree, data, settings):
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    order = data.draw(st.sampled_from(["as-is", "reversed", "shuffled"]))
    rnd = data.draw(st.randoms(use_true_random=False))
    spaces = data.draw(st.sampled_from(["", " ", "\n\t"]))

    def shuffle(keys):
        if order == "reversed":
            return keys[::-1]
        if order == "shuffled":
            rnd.shuffle(keys)
        return keys

    body = _write(tree, order=shuffle, spaces=spaces).encode()
    parsed = parse_faithful(body)
    # Numbers survive as the provider wrote them: re-serialising changes no byte of them.
    assert serialise_sorted(parsed) == _write(tree, order=sorted)
    for ensure_ascii in (False, True):  # as JavaScript writes it, as Python integrations do
        signature = _sign(tree, ensure_ascii=ensure_ascii)
        assert signature_valid(parsed, signature, SECRET)
        assert signature_valid(parsed, signature.upper(), SECRET)
        _verify(body, signature)
    assert not signature_valid(parsed, _sign(tree), SECRET + "x")


def _changed_leaf(leaf: str, index: int, replacement: str) -> str:
    if isinstance(leaf, Num):
        # The last character of a JSON number is a digit: another digit keeps it a number.
        return Num(leaf[:-1] + str((int(leaf[-1]) + 1) % 10))
    index %= len(leaf)
    new = replacement if replacement != leaf[index] else replacement + "x"
    return leaf[:index] + new + leaf[index + 1 :]


@given(
    tree=ipns,
    pick=st.integers(0, 10**6),
    index=st.integers(0, 100),
    replacement=st.characters(codec="utf-8", exclude_categories=["Cs"]),
)
@settings(max_examples=60)
def test_nowpayments_any_changed_value_breaks_the_signature(
    tree, pick, index, replacement, settings
):
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    paths = list(_paths(tree))
    assume(paths)
    path = paths[pick % len(paths)]
    changed = _replace(tree, path, _changed_leaf(_get(tree, path), index, replacement))
    body = _write(changed, order=lambda keys: keys).encode()
    signature = _sign(tree)
    assert not signature_valid(parse_faithful(body), signature, SECRET)
    with pytest.raises(SignatureInvalid):
        _verify(body, signature)


@given(tree=ipns, position=st.integers(0, 10**6), byte=st.integers(0, 255))
@settings(max_examples=80)
def test_nowpayments_any_changed_byte_is_refused(tree, position, byte, settings):
    """A byte changed anywhere in a compact body: refused, unless the body still means
    exactly the same (e.g. the case of a hex digit in a \\u escape)."""
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    body = _write(tree, order=lambda keys: keys).encode()
    position %= len(body)
    assume(body[position] != byte)
    changed = body[:position] + bytes([byte]) + body[position + 1 :]
    try:
        same = json.loads(changed, parse_float=Num, parse_int=Num) == json.loads(
            body, parse_float=Num, parse_int=Num
        ) and all(
            type(a) is type(b)
            for a, b in zip(_leaves(json.loads(changed)), _leaves(json.loads(body)), strict=False)
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        same = False
    assume(not same)
    with pytest.raises(SignatureInvalid):
        _verify(changed, _sign(tree))


def _leaves(value):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key])
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner)
    else:
        yield value


@pytest.mark.parametrize("signature", [None, "", "00" * 64, "not hex", "a" * 10_000])
def test_nowpayments_missing_or_wrong_signature_is_refused(signature, settings):
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    with pytest.raises(SignatureInvalid):
        _verify(b'{"payment_id":1,"order_id":"ps_x"}', signature)


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'"x"', b"{", b'{"a":NaN}', b'{"a":1,"a":2}', b"\xff\xfe", b"[" * 100_000]
)
def test_nowpayments_unreadable_bodies_are_refused_as_unsigned(body, settings):
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    with pytest.raises(SignatureInvalid):
        _verify(body, "ab" * 64)


def test_nowpayments_lone_surrogate_escape_is_refused_not_crashing(settings):
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    with pytest.raises(SignatureInvalid):
        _verify(b'{"order_id":"ps_x","note":"\\ud800"}', "ab" * 64)


def test_nowpayments_lone_surrogate_signed_either_way_verifies(settings):
    """JavaScript's JSON.stringify keeps non-ASCII text as is but writes a lone surrogate
    as a lower-case \\u escape; Python's json.dumps escapes all of it."""
    settings.NOWPAYMENTS_IPN_SECRET = SECRET
    body = '{"order_id":"ps_x","note":"\u00e9\\ud800"}'.encode()
    as_javascript = '{"note":"\u00e9\\ud800","order_id":"ps_x"}'.encode()
    _verify(body, hmac.new(SECRET.encode(), as_javascript, hashlib.sha512).hexdigest())
    _verify(body, _sign({"order_id": "ps_x", "note": "\u00e9\ud800"}, ensure_ascii=True))


# --- PIX copy-and-paste codes --------------------------------------------------------------


def _crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit: poly 0x1021, init 0xFFFF, no reflection, no xor-out."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
pix_args = st.fixed_dictionaries(
    {
        "key": st.one_of(
            st.emails().filter(lambda e: e.isascii() and len(e) <= 36),
            st.uuids().map(str),
            st.from_regex(r"\+55[0-9]{10,11}", fullmatch=True),
        ),
        "amount": st.none() | st.decimals(min_value="0.01", max_value="999999.99", places=2),
        "name": ascii_text.map(lambda s: s[:40]),
        "city": ascii_text.map(lambda s: s[:30]),
        "txid": st.from_regex(r"[A-Za-z0-9]{0,30}", fullmatch=True),
        "message": st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    }
)


def test_pix_crc_is_crc16_ccitt_false_check_value():
    assert _crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value
    assert pix_crc("123456789") == "29B1"


@given(args=pix_args)
@settings(max_examples=200)
def test_pix_valid_codes_parse_and_carry_their_fields(args):
    code = pix_code(**args)
    assert code.isascii() and pix_code_valid(code)
    assert int(code[-4:], 16) == _crc16_ccitt_false(code[:-4].encode())
    assert code[-4:] == code[-4:].upper()
    fields = pix_fields(code)
    assert fields["00"] == "01" and fields["52"] == "0000" and fields["53"] == "986"
    assert fields["58"] == "BR"
    assert fields["59"] == args["name"][:25] and fields["60"] == args["city"][:15]
    assert fields["63"] == code[-4:]
    account = pix_fields(fields["26"])
    assert account["00"] == "br.gov.bcb.pix" and account["01"] == args["key"]
    if args["amount"] is None:
        assert "54" not in fields
    else:
        assert fields["54"] == f"{args['amount']:.2f}"
    assert pix_fields(fields["62"])["05"] == (args["txid"][:25] or "***")


@given(
    args=pix_args,
    position=st.integers(0, 10**6),
    char=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
)
@settings(max_examples=150)
@example(  # a lower-case CRC digit is a changed character too
    args={
        "key": "a@b.co",
        "amount": None,
        "name": "Loja",
        "city": "Recife",
        "txid": "T1",
        "message": "",
    },
    position=-1,
    char="a",
)
def test_pix_any_changed_character_breaks_the_crc(args, position, char):
    code = pix_code(**args)
    position %= len(code)
    if code[position] == char:
        char = "0" if char != "0" else "1"
    changed = code[:position] + char + code[position + 1 :]
    assert changed != code
    assert not pix_code_valid(changed)


@given(
    code=st.one_of(
        st.text(st.characters(codec="ascii"), max_size=60),
        pix_args.map(lambda args: pix_code(**args)[:-4]).flatmap(
            lambda head: st.text("0123456789ABCDEFabcdef", min_size=4, max_size=4).map(
                lambda tail: head + tail
            )
        ),
    )
)
@settings(max_examples=200)
def test_pix_validation_agrees_with_the_reference_on_any_ascii(code):
    expected = len(code) > 8 and code[-8:-4] == "6304"
    expected = expected and code[-4:] == f"{_crc16_ccitt_false(code[:-4].encode()):04X}"
    assert pix_code_valid(code) == expected


# --- CPF -------------------------------------------------------------------------------------


def _check_digits(base: list[int]) -> list[int]:
    """The two CPF check digits, the way Receita Federal describes them: weights 10..2
    (then 11..2), remainder of the sum by 11; a remainder under 2 gives 0, else 11 minus it."""
    digits = list(base)
    for weights in (range(10, 1, -1), range(11, 1, -1)):
        remainder = sum(d * w for d, w in zip(digits, weights, strict=False)) % 11
        digits.append(0 if remainder < 2 else 11 - remainder)
    return digits[9:]


def _reference_valid(digits: str) -> bool:
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit():
        return False
    if len(set(digits)) == 1:
        return False
    numbers = [int(d) for d in digits]
    return _check_digits(numbers[:9]) == numbers[9:]


bases = st.lists(st.integers(0, 9), min_size=9, max_size=9).filter(lambda b: len(set(b)) > 1)


def _formats(digits: str) -> list[str]:
    d = digits
    return [
        d,
        f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}",
        f" {d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]} ",
        f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}",
        f"{d[:9]}/{d[9:]}",
    ]


@given(base=bases, style=st.integers(0, 4))
def test_cpf_generated_valid_numbers_validate_in_every_format(base, style):
    digits = "".join(map(str, base + _check_digits(base)))
    text = _formats(digits)[style]
    assert cpf_valid(text)
    assert cpf_digits(text) == digits
    assert cpf_mask(text) == f"***.***.***-{digits[-2:]}"


@given(base=bases, position=st.integers(0, 10), delta=st.integers(1, 9))
@settings(max_examples=300)
def test_cpf_single_digit_changes(base, position, delta):
    """A changed check digit always fails; a changed base digit fails exactly when the
    standard says so (the mod-11 "10 counts as 0" rule lets a few through, by design)."""
    numbers = base + _check_digits(base)
    numbers[position] = (numbers[position] + delta) % 10
    changed = "".join(map(str, numbers))
    assert cpf_valid(changed) == _reference_valid(changed)
    if position >= 9:
        assert not cpf_valid(changed)


@given(digit=st.integers(0, 9), style=st.integers(0, 4))
def test_cpf_repeated_digits_are_refused(digit, style):
    assert not cpf_valid(_formats(str(digit) * 11)[style])


@given(text=st.text(st.characters(codec="ascii"), max_size=20))
def test_cpf_validation_matches_the_standard_on_ascii_junk(text):
    assert cpf_valid(text) == _reference_valid(cpf_digits(text))
    assert cpf_mask(text) in ("", f"***.***.***-{cpf_digits(text)[-2:]}")


@pytest.mark.parametrize("zero", ["\u0660", "\u06f0", "\uff10"], ids=["arabic", "persian", "wide"])
def test_cpf_only_ascii_digits_count(zero):
    text = "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in "529.982.247-25")
    assert cpf_valid("529.982.247-25")
    assert not cpf_valid(text)


def test_check_digit_reference_matches_a_known_cpf():
    assert _check_digits([5, 2, 9, 9, 8, 2, 2, 4, 7]) == [2, 5]
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1
