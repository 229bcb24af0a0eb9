"""Masking of personal data (portal/masking.py): what pages, the admin, the API and exports
show instead of a phone number, an ID number or a name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.masking import mask_id_number, mask_name, mask_phone

# --- phone ------------------------------------------------------------------------------


def test_mobile_phone_keeps_first_three_and_last_four_digits():
    assert mask_phone("13812345678") == "138****5678"


def test_phone_with_country_code_keeps_prefix_and_last_four():
    assert mask_phone("+8613812345678") == "+86*******5678"


def test_eight_digit_phone_masks_the_middle_digit():
    assert mask_phone("12345678") == "123*5678"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("1234567", "*****67"),  # 7 digits: too short to keep 3 + 4, only the last 2 stay
        ("12345", "***45"),
        ("123", "*23"),
        ("12", "**"),
        ("1", "*"),
    ],
)
def test_short_phone_shows_at_most_the_last_two_digits(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("empty", ["", None])
def test_missing_phone_masks_to_empty_string(empty):
    assert mask_phone(empty) == ""


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_any_mobile_number_hides_its_middle_four_digits(phone):
    masked = mask_phone(phone)

    assert masked == phone[:3] + "****" + phone[-4:]
    assert phone not in masked


@given(st.text(alphabet="0123456789+", min_size=1, max_size=20))
def test_masked_phone_has_the_same_length_and_never_the_raw_value(phone):
    masked = mask_phone(phone)

    assert len(masked) == len(phone)
    assert "*" in masked
    assert masked != phone


# --- ID number --------------------------------------------------------------------------


def test_18_character_id_keeps_region_code_and_last_two():
    assert mask_id_number("110101199003071234") == "110101**********34"


def test_18_character_id_with_check_letter_x_keeps_the_x():
    assert mask_id_number("11010119900307123X") == "110101**********3X"


def test_old_15_digit_id_keeps_region_code_and_last_two():
    assert mask_id_number("110101900307123") == "110101*******23"


def test_id_number_hides_the_birth_date():
    masked = mask_id_number("110101199003071234")

    assert "19900307" not in masked
    assert "1990" not in masked


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [("12345678", "********"), ("1234", "****"), ("1", "*")],
)
def test_short_id_number_is_masked_entirely(id_number, masked):
    assert mask_id_number(id_number) == masked


@pytest.mark.parametrize("empty", ["", None])
def test_missing_id_number_masks_to_empty_string(empty):
    assert mask_id_number(empty) == ""


@given(st.from_regex(r"\d{17}[\dX]", fullmatch=True))
def test_any_18_character_id_shows_only_region_and_last_two(id_number):
    masked = mask_id_number(id_number)

    assert masked == id_number[:6] + "*" * 10 + id_number[-2:]
    assert len(masked) == 18


# --- name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [("王小明", "王**"), ("欧阳娜娜", "欧***"), ("李", "李"), ("", ""), (None, "")],
)
def test_name_keeps_only_the_first_character(name, masked):
    assert mask_name(name) == masked
