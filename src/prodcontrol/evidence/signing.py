"""Ed25519 signatures over chain heads, key rotations and pack manifests.

The signing key lives outside the evidence database (a PEM file named by the
``evidence_signing_key`` setting, or the PEM itself in ``PRODCONTROL_EVIDENCE_SIGNING_KEY``).
Whoever can write to the database but does not hold the key can still recompute every hash of
a rewritten chain, but cannot sign its new head: ``evidence verify`` then fails.

Every signed document is RFC 8785 JSON with a ``type`` naming what it is, so a signature over a
chain head can never be replayed as a signature over a manifest or a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from prodcontrol.errors import UsageError
from prodcontrol.evidence.canonical import canonical_bytes
from prodcontrol.evidence.records import HeadSignature

__all__ = ["HeadSignature", "SigningKey", "VerifyKey"]

HEAD_TYPE = "prodcontrol.chain-head/1"
ROTATION_TYPE = "prodcontrol.key-rotation/1"
MANIFEST_TYPE = "prodcontrol.pack-manifest/2"
KEY_ADDED = "evidence.key_added"
KEY_ROTATED = "evidence.key_rotated"
KEY_KINDS = (KEY_ADDED, KEY_ROTATED)
KEY_SUBJECT = "evidence"
"""The subject of the chain entries that add or rotate a key."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id_of(public_raw: bytes) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


class VerifyKey:
    """An Ed25519 public key: checks signatures, never makes them."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id_of(self.raw)

    @classmethod
    def from_b64(cls, text: str) -> VerifyKey:
        try:
            return cls(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
        except ValueError as exc:
            raise UsageError(f"not an Ed25519 public key ({exc})") from None

    @classmethod
    def load(cls, path: Path) -> VerifyKey:
        """A public key file (PEM, as written by ``evidence keygen``) or a private one."""
        data = _read_key_file(path)
        try:
            key: Any = serialization.load_pem_public_key(data)
        except ValueError:
            return SigningKey.from_pem(data, str(path)).verify_key
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"{path}: not an Ed25519 public key; write one with `evidence keygen`")
        return cls(key)

    @property
    def public_b64(self) -> str:
        return _b64(self.raw)

    @property
    def public(self) -> Ed25519PublicKey:
        return self._public

    def verify(self, document: dict[str, Any], signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
            self._public.verify(raw, canonical_bytes(document))
        except (InvalidSignature, ValueError):
            return False
        return True

    def public_pem(self) -> bytes:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class SigningKey:
    """An Ed25519 private key that signs evidence documents."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.verify_key = VerifyKey(private.public_key())
        self.key_id = self.verify_key.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> SigningKey:
        try:
            key: Any = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"{where}: not an unencrypted PEM private key ({exc}); "
                "write one with `prodcontrol evidence keygen --out PATH`"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise UsageError(f"{where}: the key is not Ed25519; write one with `evidence keygen`")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls.from_pem(_read_key_file(path), str(path))

    @classmethod
    def from_setting(cls, value: str) -> SigningKey:
        """The ``evidence_signing_key`` setting: the PEM text itself, or the path of a PEM file."""
        if value.lstrip().startswith("-----BEGIN"):
            return cls.from_pem(value.encode(), "PRODCONTROL_EVIDENCE_SIGNING_KEY")
        return cls.load(Path(value).expanduser())

    @property
    def public_b64(self) -> str:
        return self.verify_key.public_b64

    def sign(self, document: dict[str, Any]) -> str:
        """Base64 Ed25519 signature over the RFC 8785 bytes of ``document``."""
        return _b64(self._private.sign(canonical_bytes(document)))

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, path: Path) -> Path:
        """Write the private key (mode 0600) and ``<path>.pub``; never overwrite a key."""
        public = path.with_name(path.name + ".pub")
        for target in (path, public):
            if target.exists():
                raise UsageError(f"{target} exists; refusing to overwrite a key; use another path")
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.private_pem())
        public.write_bytes(self.verify_key.public_pem())
        return public


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the evidence key ({exc.strerror}); check evidence_signing_key "
            "or create one with `prodcontrol evidence keygen --out PATH`"
        ) from None


# --------------------------------------------------------------------------- documents


def head_document(seq: int, digest: str, key_id: str, from_seq: int) -> dict[str, Any]:
    """What a commit signs: the head it leaves, and the head it started from.

    ``from_seq`` ties consecutive signatures together: a commit that started from entry 100
    proves nobody appended entries between the previous signed head (100) and it.
    """
    return {"type": HEAD_TYPE, "seq": seq, "hash": digest, "key_id": key_id, "from_seq": from_seq}


def sign_head(key: SigningKey, seq: int, digest: str, from_seq: int) -> HeadSignature:
    return HeadSignature(
        seq=seq,
        hash=digest,
        key_id=key.key_id,
        signature=key.sign(head_document(seq, digest, key.key_id, from_seq)),
        from_seq=from_seq,
    )


def commit_signer(
    signed_by: str | None, signer: SigningKey | None, replaces: str | None = None
) -> SigningKey | None:
    """The key that signs the head a commit leaves, or None: the store is not signed.

    ``signed_by`` is the key of the store's newest signature (None: never signed), ``replaces``
    the key a rotation in this commit retires. A signed store refuses a process without its key,
    or with another one, so nothing is written (a misconfigured worker fails loudly instead of
    leaving an unsigned tail that verify would report as tampering). The first signed commit
    of a store chains the key itself first (``KEY_ADDED``).
    """
    if signer is None:
        if signed_by is not None:
            raise UsageError(
                f"the evidence store is signed (key {signed_by}) but this process has no "
                "signing key, so nothing was written: set evidence_signing_key (or "
                "PRODCONTROL_EVIDENCE_SIGNING_KEY) to that key's file"
            )
        return None
    if signed_by is not None and signed_by not in (signer.key_id, replaces):
        raise UsageError(
            f"the evidence store is signed by key {signed_by}, but evidence_signing_key is "
            f"key {signer.key_id}, so nothing was written: configure the store's key, "
            "or replace it with `prodcontrol evidence rotate-key`"
        )
    return signer


def rotation_document(key_id: str, public_key: str, previous_key_id: str | None) -> dict[str, Any]:
    return {
        "type": ROTATION_TYPE,
        "key_id": key_id,
        "public_key": public_key,
        "previous_key_id": previous_key_id,
    }


def key_payload(new: SigningKey, previous: SigningKey | None) -> dict[str, Any]:
    """The payload of the chain entry that introduces ``new`` (endorsed by ``previous``)."""
    previous_id = previous.key_id if previous is not None else None
    document = rotation_document(new.key_id, new.public_b64, previous_id)
    return {
        "key_id": new.key_id,
        "public_key": new.public_b64,
        "previous_key_id": previous_id,
        "endorsement": previous.sign(document) if previous is not None else None,
    }
