# ruff: noqa: RUF001 - Turkish texts: the dotless i is a letter, not a look-alike
"""The ACS challenge page's texts, per language (tr, en). Pure data: the page takes every text
from here, none from its template."""

from __future__ import annotations

from typing import Literal

Language = Literal["tr", "en"]
LANGUAGES: tuple[Language, ...] = ("tr", "en")

MESSAGES: dict[Language, dict[str, str]] = {
    "tr": {
        "title": "3-D Secure doğrulama",
        "intro": "Ödemenizi onaylamak için bankanızın gönderdiği tek kullanımlık kodu girin.",
        "amount": "Tutar",
        "merchant": "İşyeri",
        "card": "Kart",
        "code_label": "Tek kullanımlık kod",
        "code_hint": "6 haneli kod",
        "dev_code": "Geliştirme ortamı: kodunuz {code}",
        "submit": "Onayla",
        "cancel": "Vazgeç",
        "wrong_code": "Kod hatalı. Kalan deneme hakkı: {left}.",
        "expires": "Bu doğrulama {time} (UTC) saatine kadar geçerlidir.",
        "expired": "Doğrulamanın süresi doldu. Ödeme tamamlanmadı.",
        "done_authenticated": "Doğrulama tamamlandı. Mağazaya dönebilirsiniz.",
        "done_failed": "Doğrulama başarısız oldu. Ödeme tamamlanmadı.",
        "done_abandoned": "Doğrulamadan vazgeçildi. Ödeme tamamlanmadı.",
        "back": "Mağazaya dön",
        "not_found": "Bu doğrulama bulunamadı.",
        "forbidden": "Form süresi dolmuş ya da geçersiz. Sayfayı yenileyip yeniden deneyin.",
        "switch": "English",
    },
    "en": {
        "title": "3-D Secure verification",
        "intro": "Enter the one-time code your bank sent you to confirm your payment.",
        "amount": "Amount",
        "merchant": "Merchant",
        "card": "Card",
        "code_label": "One-time code",
        "code_hint": "6-digit code",
        "dev_code": "Development: your code is {code}",
        "submit": "Confirm",
        "cancel": "Cancel",
        "wrong_code": "Wrong code. Attempts left: {left}.",
        "expires": "This verification is valid until {time} (UTC).",
        "expired": "The verification has expired. The payment was not completed.",
        "done_authenticated": "Verification complete. You can return to the shop.",
        "done_failed": "Verification failed. The payment was not completed.",
        "done_abandoned": "Verification cancelled. The payment was not completed.",
        "back": "Return to the shop",
        "not_found": "This verification does not exist.",
        "forbidden": "The form has expired or is not valid. Reload the page and try again.",
        "switch": "Türkçe",
    },
}


def pick_language(query: str | None, accept_language: str | None) -> Language:
    """`?lang=` first, then the browser's first supported language, else Turkish."""
    if query in LANGUAGES:
        return query
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "tr"


def format_amount(amount: int, currency: str, exponent: int, language: Language) -> str:
    """`1.250,00 TRY` (tr) or `TRY 1,250.00` (en)."""
    major, minor = divmod(amount, 10**exponent)
    grouped = f"{major:,}"
    fraction = f"{minor:0{exponent}d}" if exponent else ""
    if language == "tr":
        text = grouped.replace(",", ".") + ("," + fraction if fraction else "")
        return f"{text} {currency}"
    return f"{currency} {grouped}" + ("." + fraction if fraction else "")
