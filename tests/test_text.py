"""SMS text encoding: what a user is charged, and what a phone receives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sms_worker.text import analyze, downgrade, downgrade_to_gsm7, split_segments
from sms_worker.text.gsm7 import BASIC_CHARS, EXTENSION_CHARS, GSM7_CHARS

# --- GSM-7 ---------------------------------------------------------------------------------


def test_empty_text_costs_nothing() -> None:
    a = analyze("")
    assert (a.encoding, a.segments, a.units, a.forced_ucs2) == ("GSM-7", 0, 0, ())
    assert split_segments("") == []


def test_160_gsm_chars_fit_one_part_and_161_need_two() -> None:
    one = analyze("a" * 160)
    assert (one.encoding, one.segments, one.units, one.per_segment) == ("GSM-7", 1, 160, 160)
    two = analyze("a" * 161)
    assert (two.encoding, two.segments, two.units, two.per_segment) == ("GSM-7", 2, 161, 153)
    assert split_segments("a" * 161) == ["a" * 153, "a" * 8]


def test_multipart_gsm_parts_hold_153_septets() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(153 * 3))
    assert analyze(text).segments == 3
    assert analyze(text + "x").segments == 4
    assert [len(p) for p in split_segments(text + "x")] == [153, 153, 153, 1]


def test_gsm_accented_letters_and_greek_stay_gsm7() -> None:
    text = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\r\n"
    a = analyze(text)
    assert a.encoding == "GSM-7"
    assert a.units == len(text)


def test_extension_chars_cost_two_septets() -> None:
    for ch in "^{}\\[~]|€\x0c":
        assert analyze(ch).units == 2, repr(ch)
    assert analyze("€" * 80).segments == 1  # 160 septets
    a = analyze("€" * 81)  # 162 septets
    assert (a.encoding, a.segments, a.units) == ("GSM-7", 2, 162)


def test_escape_pair_at_part_boundary_moves_to_next_part() -> None:
    # 152 septets, then '€' would need septets 153 and 154: it must not be cut in half.
    text = "a" * 152 + "€" + "b" * 10
    assert analyze(text).segments == 2
    assert split_segments(text) == ["a" * 152, "€" + "b" * 10]


def test_escape_pair_that_fits_exactly_stays_in_part() -> None:
    text = "a" * 151 + "€" + "b" * 10
    assert split_segments(text) == ["a" * 151 + "€", "b" * 10]


# --- UCS-2 ---------------------------------------------------------------------------------


def test_70_ucs2_units_fit_one_part_and_71_need_two() -> None:
    one = analyze("ž" * 70)
    assert (one.encoding, one.segments, one.units, one.per_segment) == ("UCS-2", 1, 70, 70)
    two = analyze("ž" * 71)
    assert (two.encoding, two.segments, two.units, two.per_segment) == ("UCS-2", 2, 71, 67)


def test_one_non_gsm_char_makes_the_whole_message_ucs2() -> None:
    a = analyze("a" * 100 + "ť")
    assert a.encoding == "UCS-2"
    assert a.segments == 2  # would have been 1 in GSM-7


def test_multipart_ucs2_parts_hold_67_units() -> None:
    text = "ж" * (67 * 2 + 1)
    assert analyze(text).segments == 3
    assert split_segments(text) == ["ж" * 67, "ж" * 67, "ж"]


def test_emoji_counts_two_units() -> None:
    a = analyze("😀" * 35)
    assert (a.encoding, a.segments, a.units) == ("UCS-2", 1, 70)
    assert analyze("😀" * 36).segments == 2


def test_emoji_at_part_boundary_is_not_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 5  # 73 units: the emoji would need units 67 and 68
    assert analyze(text).segments == 2
    assert split_segments(text) == ["ж" * 66, "😀" + "ж" * 5]


def test_forced_ucs2_lists_offending_chars_once_in_order_of_appearance() -> None:
    a = analyze("Ahoj, ako sa máš? Čaká ťa 😀 a ešte 😀 á")
    assert a.forced_ucs2 == ("á", "š", "Č", "ť", "😀")
    assert analyze("Ahoj, ako sa mas? € é").forced_ucs2 == ()


# --- downgrade -----------------------------------------------------------------------------


def test_slovak_text_downgrades_to_gsm7_ascii_letters() -> None:
    text = "Žltý kôň úpel ďábelské ódy; čšžťľŕôáíý ČŠŽŤĽŔÔÁÍÝ ĺň ä é"
    out = downgrade_to_gsm7(text)
    assert out == "Zlty kon upel dabelské ody; csztlroaiy CSZTLROAIY ln ä é"
    assert analyze(out).encoding == "GSM-7"
    assert analyze(out).segments == 1


def test_downgrade_keeps_gsm7_accents_but_folds_others() -> None:
    # à is GSM-7, á is not; é, ü, Ñ are GSM-7.
    assert downgrade_to_gsm7("à á é ü Ñ") == "à a é ü Ñ"


def test_downgrade_typography() -> None:
    text = "\u201eQuoted\u201c \u2018single\u2019 \u2013 dash \u2014 dash\u2026 a\u00a0b"
    assert downgrade_to_gsm7(text) == "\"Quoted\" 'single' - dash - dash... a b"


def test_downgrade_marks_the_unrepresentable_with_question_mark() -> None:
    out = downgrade_to_gsm7("ok 😀")
    assert out == "ok ?"
    assert analyze(out).encoding == "GSM-7"


def test_a_gsm7_text_priced_as_ucs2_counts_70_and_67_units() -> None:
    assert (analyze("a" * 70, ucs2=True).encoding, analyze("a" * 70, ucs2=True).segments) == ("UCS-2", 1)
    assert analyze("€" * 71, ucs2=True).segments == 2  # one UTF-16 unit each, not an escape pair
    assert [len(part) for part in split_segments("a" * 140, ucs2=True)] == [67, 67, 6]


def test_downgrade_names_what_has_no_gsm7_form() -> None:
    assert downgrade("ok 😀 ✓ 😀 北").unmapped == ("😀", "✓")
    assert downgrade("Ďakujeme “všetkým”").unmapped == ()


def test_downgrade_composes_decomposed_accents() -> None:
    assert downgrade_to_gsm7("e\u0301") == "é"  # GSM-7 é, not "e" plus a lost mark
    assert downgrade_to_gsm7("a\u0301") == "a"


def test_downgrade_leaves_gsm7_text_untouched() -> None:
    text = "Price: 10€ [promo] {x} ~ | ^ \\ @£$"
    assert downgrade_to_gsm7(text) == text


# --- properties ----------------------------------------------------------------------------


def _reference_parts(text: str) -> list[str]:
    """Naive per-character greedy packing, the definition the fast code must agree with."""
    if not text:
        return []
    if all(c in GSM7_CHARS for c in text):
        cost = {c: 2 for c in EXTENSION_CHARS}
        units = sum(cost.get(c, 1) for c in text)
        single, multi = 160, 153

        def weight(c: str) -> int:
            return cost.get(c, 1)
    else:
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        single, multi = 70, 67

        def weight(c: str) -> int:
            return 2 if ord(c) > 0xFFFF else 1

    if units <= single:
        return [text]
    parts, current, used = [], "", 0
    for c in text:
        w = weight(c)
        if used + w > multi:
            parts.append(current)
            current, used = "", 0
        current += c
        used += w
    parts.append(current)
    return parts


_alphabet = st.one_of(
    st.sampled_from(sorted(BASIC_CHARS)),
    st.sampled_from(sorted(EXTENSION_CHARS)),
    st.sampled_from("áčšžťľ–…😀🇸🇰中"),
    st.characters(),
)
_texts = st.one_of(
    st.text(),
    st.text(alphabet=_alphabet, max_size=700),
    st.text(alphabet=st.sampled_from("ab€{"), max_size=700),
    st.text(alphabet=st.sampled_from("ab😀ž"), max_size=400),
)


@settings(max_examples=500, deadline=None)
@given(_texts)
def test_parts_rejoin_and_match_segment_count(text: str) -> None:
    a = analyze(text)
    parts = split_segments(text)
    assert a.segments == len(parts)
    assert "".join(parts) == text
    assert parts == _reference_parts(text)
    assert all(p for p in parts)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_downgrade_always_yields_gsm7(text: str) -> None:
    out = downgrade_to_gsm7(text)
    assert analyze(out).encoding == "GSM-7"
    assert downgrade_to_gsm7(out) == out
