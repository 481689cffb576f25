"""Normalised identities that reveal duplicate accounts: a web domain and a tax id, written any which way."""

from __future__ import annotations

import re


def domain_key(domain: str | None) -> str | None:
    """'https://WWW.Example.com/' -> 'example.com'; None when nothing is left."""
    if not domain:
        return None
    text = domain.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split(":", 1)[0].rstrip(".")
    text = text.removeprefix("www.")
    return text or None


def tax_key(tax_id: str | None) -> str | None:
    """'de 123-456.789' -> 'DE123456789': tax ids differ only in letters and digits."""
    if not tax_id:
        return None
    text = re.sub(r"[^0-9A-Za-z]", "", tax_id).upper()
    return text or None
