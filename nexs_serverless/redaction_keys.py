"""Which attribute keys name a credential, and which keys redaction leaves alone.

Key verdicts are cached by the `Redactor`, so this module favours being right
over being fast: keys are split into words and judged word by word, which
tells ``x-api-key`` (a credential) from ``aws_access_key_id`` (its id),
``token_type`` (a description) or ``gen_ai.usage.input_tokens`` (a count).
"""

from __future__ import annotations

import itertools
import re

__all__ = ["EXEMPT", "KEY_HINTS", "glob", "is_secret_key"]

# Compiled (and cached by `re`) at the first key that holds a hint, not at import: this module
# loads at the first invocation's flush, where `re.compile` would cost more than judging its keys.
_WORD_PATTERN = r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+"
_SECRET_WORDS = frozenset(
    {
        "authorization",
        "cookie",
        "cookies",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "signature",
        "sig",  # an Azure SAS token's signature (OpenTelemetry's url.full names it)
        "privatekey",
    }
)
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("pass", "word"),
        # Azure: a function key (``x-functions-key``) and an API Management subscription key.
        ("functions", "key"),
        ("subscription", "key"),
        # A storage or Cosmos DB connection string's ``AccountKey=``, Cosmos DB's ``masterKey``.
        ("account", "key"),
        ("master", "key"),
        ("encryption", "key"),
        ("signing", "key"),
        ("hmac", "key"),
    }
)
# One lower-case word that ends in one of these names a credential too (``authtoken``,
# ``refreshtoken``, ``clientsecret``, ``dbpassword``); ``key`` is not here (``cachekey``).
_SECRET_ENDINGS = ("token", "secret", "password", "passwd")
# And these, written as one word ("secret key" and "access key" as one).
_SECRET_JOINED = frozenset({"secretkey", "accesskey"})
# A trailing word that makes the key describe the secret rather than hold it.
_DESCRIBING = frozenset(
    {
        "arn",
        "name",
        "type",
        "count",
        "length",
        "len",
        "size",
        "id",
        "ids",
        "expires",
        "expiry",
        "expiration",
        "ttl",
        "version",
        "enabled",
        "present",
        "hint",
        "policy",
        "validity",
        "url",
    }
)

# Every key `is_secret_key` accepts contains one of these, lower-cased (each secret
# word or pair holds one): text without any of them cannot hold a secret ``key=value``.
KEY_HINTS = ("pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential", "sig")

# Keys whose values this layer fills from platform facts (ids, names, regions,
# ARNs, methods): detectors skip them unless a key rule names them. tenant.id is
# here too because tenant routing reads it after redaction.
EXEMPT = frozenset(
    {
        "tenant.id",
        "sampling.rule",
        "cloud.provider",
        "cloud.platform",
        "cloud.region",
        "cloud.account.id",
        "cloud.resource_id",
        "aws.lambda.invoked_arn",
        "faas.name",
        "faas.version",
        "faas.instance",
        "faas.invocation_id",
        "faas.trigger",
        "faas.max_memory",
        "faas.coldstart",
        "nexs.trigger.source",
        "nexs.init.type",
        "http.request.method",
        "url.scheme",
        "http.response.status_code",
    }
)


def is_secret_key(key: str) -> bool:
    """Whether an attribute key or JSON path names a credential.

    The key is split into words (``x-api-key`` -> x, api, key; ``apiKey`` ->
    api, key). It names a credential when a word is one of Authorization,
    Cookie, password, secret, token, signature (sig), credential(s)..., or ends in
    token/secret/password (``authtoken``), or two adjacent words make
    api/access/private/secret/functions/subscription/account/master/encryption/signing/hmac
    key or pass word, unless the last word
    only describes the secret (``token_type``, ``secret.arn``, ``access_key_id``).
    """
    folded = key.lower()
    if not any(hint in folded for hint in KEY_HINTS):
        return False  # every key accepted below holds a hint (see KEY_HINTS)
    words = [word.lower() for word in re.findall(_WORD_PATTERN, key)]
    if not words or words[-1] in _DESCRIBING:
        return False
    if words[-1] == "auth" or not _SECRET_WORDS.isdisjoint(words) or not _SECRET_JOINED.isdisjoint(words):
        return True
    if any(word.endswith(_SECRET_ENDINGS) for word in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def glob(pattern: str) -> re.Pattern[str]:
    """A case-insensitive regex for a key glob (``*`` any run, ``?`` one character), for fullmatch."""
    escaped = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped, re.IGNORECASE)
