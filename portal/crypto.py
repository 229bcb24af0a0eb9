"""Personal data at rest: AES-256-GCM encryption and keyed hashes (HMAC-SHA256) for exact
search, with the `cryptography` library.

Keys come from `settings.PERSONAL_DATA_KEYS`: entries ``key-id:base64 of 32 random bytes``,
the first one current (it encrypts and hashes everything written), the others still read
(a rotation in progress: ``manage.py personal_data_key rotate``). From each master key two
keys are derived with HKDF: one encrypts, one hashes, so a hash never reveals the cipher key.

A stored value reads ``enc1:<key-id>:<base64(nonce + ciphertext + tag)>``; the column's
name is bound to it as associated data, so a phone's ciphertext copied into the ID-number
column does not decrypt. A value without the prefix is a row written before encryption
(``personal_data_key status`` counts them, ``rotate`` encrypts them) and reads as it is.

`EncryptedTextField` stores through these; lookups on it are refused (a random nonce makes
every ciphertext different, so `filter(phone=...)` could never match): exact search goes
through a `DigestField`, which keeps the current key's keyed hash of another field's
normalised value and is filled on every save and bulk insert.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

__all__ = [
    "DigestField",
    "EncryptedTextField",
    "PersonalKey",
    "key_id_of",
    "personal_decrypt",
    "personal_digest",
    "personal_digests",
    "personal_encrypt",
    "personal_key_generate",
    "personal_keys",
    "personal_normalise",
]

PREFIX = "enc1"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: the digest column keeps 128 bits of the HMAC: no collisions among billions of values
DIGEST_HEX_CHARS = 32


@dataclass(frozen=True)
class PersonalKey:
    key_id: str
    cipher: AESGCM
    mac_key: bytes


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


@lru_cache(maxsize=8)
def _parse_keys(entries: tuple[str, ...]) -> tuple[PersonalKey, ...]:
    keys = []
    seen = set()
    for entry in entries:
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ImproperlyConfigured(
                "PERSONAL_DATA_KEYS: every entry is 'key-id:base64 of 32 bytes' (key-id of "
                "letters, digits, . _ -); generate one with `manage.py personal_data_key "
                "generate`."
            )
        try:
            master = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            master = b""
        if len(master) != 32:
            raise ImproperlyConfigured(
                f"PERSONAL_DATA_KEYS: key '{key_id}' is not base64 of 32 bytes; generate one "
                "with `manage.py personal_data_key generate`."
            )
        if key_id in seen:
            raise ImproperlyConfigured(f"PERSONAL_DATA_KEYS: key id '{key_id}' appears twice.")
        seen.add(key_id)
        keys.append(
            PersonalKey(
                key_id=key_id,
                cipher=AESGCM(_derive(master, b"portal personal data: encryption")),
                mac_key=_derive(master, b"portal personal data: search digest"),
            )
        )
    if not keys:
        raise ImproperlyConfigured(
            "PERSONAL_DATA_KEYS is empty: personal data cannot be stored. Set it (README.md, "
            "'Configuration'); generate a key with `manage.py personal_data_key generate`."
        )
    return tuple(keys)


def personal_keys() -> tuple[PersonalKey, ...]:
    """The configured keys, the current one first."""
    return _parse_keys(tuple(settings.PERSONAL_DATA_KEYS))


def personal_key_generate(key_id: str) -> str:
    """A new `PERSONAL_DATA_KEYS` entry: the id and 32 random bytes, base64."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1-32 letters, digits, '.', '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def personal_encrypt(value: str, *, purpose: str) -> str:
    """`value` encrypted under the current key ('' stays '': nothing to hide)."""
    if not value:
        return ""
    key = personal_keys()[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key.cipher.encrypt(nonce, value.encode(), purpose.encode())
    return f"{PREFIX}:{key.key_id}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str | None:
    """The id of the key a stored value is encrypted under; None for a clear (legacy) one."""
    if not stored or not stored.startswith(PREFIX + ":"):
        return None
    return stored.split(":", 2)[1]


def personal_decrypt(stored: str, *, purpose: str) -> str:
    """The clear value of a stored one. A value written before encryption reads as it is."""
    key_id = key_id_of(stored)
    if key_id is None:
        return stored
    keys = {key.key_id: key for key in personal_keys()}
    key = keys.get(key_id)
    if key is None:
        raise ImproperlyConfigured(
            f"Personal data is encrypted under key '{key_id}', which PERSONAL_DATA_KEYS no "
            "longer lists: add it back (after the current key) and finish the rotation with "
            "`manage.py personal_data_key rotate` before removing it."
        )
    raw = base64.b64decode(stored.split(":", 2)[2])
    try:
        return key.cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()).decode()
    except InvalidTag:
        raise ImproperlyConfigured(
            f"A stored {purpose} does not decrypt under key '{key_id}': the key in "
            "PERSONAL_DATA_KEYS is not the one it was written with, or the value was altered."
        ) from None


_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def personal_normalise(value: str, *, purpose: str) -> str:
    """The form a value is hashed in, so that every way of typing it finds it: ID numbers
    upper-case without spaces; phones digits only, without a +86 / 0086 country code in
    front of a mainland mobile number."""
    text = (value or "").strip()
    if purpose == "id_number":
        return re.sub(r"\s", "", text).upper()
    if purpose == "phone":
        digits = _PHONE_SEPARATORS.sub("", text)
        if digits.startswith("+"):
            digits = digits[1:]
        elif digits.startswith("00"):
            digits = digits[2:]
        if len(digits) == 13 and digits.startswith("86") and digits[2] == "1":
            digits = digits[2:]
        return digits
    return text


def _digest(key: PersonalKey, normalised: str, purpose: str) -> str:
    mac = hmac.new(key.mac_key, f"{purpose}\x1f{normalised}".encode(), sha256)
    return mac.hexdigest()[:DIGEST_HEX_CHARS]


def personal_digest(value: str, *, purpose: str) -> str:
    """The current key's keyed hash of `value` ('' for an empty value)."""
    normalised = personal_normalise(value, purpose=purpose)
    if not normalised:
        return ""
    return _digest(personal_keys()[0], normalised, purpose)


def personal_digests(value: str, *, purpose: str) -> list[str]:
    """`value`'s keyed hash under every configured key: what an exact search looks for
    (during a rotation a row may still carry the previous key's hash)."""
    normalised = personal_normalise(value, purpose=purpose)
    if not normalised:
        return []
    return [_digest(key, normalised, purpose) for key in personal_keys()]


class EncryptedTextField(models.TextField):
    """Text encrypted at rest (AES-GCM under `PERSONAL_DATA_KEYS`); the model attribute is
    the clear value. `purpose` (default: the column's name) is bound to the ciphertext.
    No lookups but `isnull` (and the trigger conditions'): search through a `DigestField`."""

    def __init__(self, *args, purpose: str = "", **kwargs):
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.purpose:
            kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    @property
    def _purpose(self) -> str:
        return self.purpose or self.name

    #: `isnull`, and the IS [NOT] DISTINCT FROM of django-pgtrigger's trigger conditions
    #: (OLD against NEW, both stored forms)
    LOOKUPS = frozenset({"isnull", "df", "ndf"})

    def get_lookup(self, lookup_name):
        if lookup_name not in self.LOOKUPS:
            return None  # FieldError: "Unsupported lookup … for EncryptedTextField"
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        return None

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return personal_decrypt(value, purpose=self._purpose)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return value
        if key_id_of(value) is not None:  # already stored form (a copy of a stored row)
            return value
        return personal_encrypt(value, purpose=self._purpose)


class DigestField(models.CharField):
    """The current key's keyed hash of another field's value (`source`), kept up to date on
    every save and bulk insert (not by `QuerySet.update`): the column exact search uses."""

    def __init__(self, *args, source: str = "", purpose: str = "", **kwargs):
        self.source = source
        self.purpose = purpose
        kwargs.setdefault("max_length", DIGEST_HEX_CHARS)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        # rows written by raw SQL (COPY in benchmarks, bulk loads) get '' until
        # `personal_data_key rotate` fills their hashes
        kwargs.setdefault("db_default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        if self.purpose:
            kwargs["purpose"] = self.purpose
        for key, default in (
            ("max_length", DIGEST_HEX_CHARS),
            ("blank", True),
            ("default", ""),
            ("db_default", ""),
        ):
            if kwargs.get(key) == default:
                del kwargs[key]
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.source, "") or ""
        digest = personal_digest(value, purpose=self.purpose or self.source)
        setattr(model_instance, self.attname, digest)
        return digest
