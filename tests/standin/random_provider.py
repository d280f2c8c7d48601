"""The stand-in for the pulumi-random provider plugin (`pulumi-resource-random`).

terraform-provider-random as pulumi-random 4.x bridges it, for the two resources the program
uses:
- `RandomPassword`: `length` characters from the classes left on (`upper`, `lower`, `numeric`,
  `special`, each on by default; `overrideSpecial` replaces the special set), at least `min*`
  of each; `result` is the password (the SDK marks it secret);
- `RandomId`: `byteLength` random bytes as `hex`, `b64Std`, `b64Url` (also the ID) and `dec`,
  `prefix` in front of each.
Every input of either forces a new value (a change of `keepers` is how a program asks for one);
Read gives the state back unchanged, so a refresh never finds drift. The password's
`bcryptHash` is a bcrypt hash of it (cost 10, as the provider's), made with the C library's
crypt(3) through Python's `crypt` module (3.11 and 3.12, the versions CI runs).
"""

from __future__ import annotations

import base64
import secrets
import string
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from tests.standin.checked import unknown_paths
from tests.standin.plugin import (
    UNKNOWN,
    CheckFailedError,
    Diff,
    Engine,
    KeptState,
    Kind,
    Properties,
    Provider,
    serve,
    type_of,
)

PLUGIN_NAME = "random"
PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_ID = "random:index/randomId:RandomId"
PASSWORD_DEFAULTS = {
    "special": True,
    "upper": True,
    "lower": True,
    "numeric": True,
    "number": True,
    "minUpper": 0,
    "minLower": 0,
    "minNumeric": 0,
    "minSpecial": 0,
}
SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


class Generated(KeptState):
    """A generated value: every input forces a new one (a change of `keepers` is how a program
    asks for one); its outputs are not inputs."""

    OUTPUTS: frozenset[str] = frozenset()

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        changed = sorted(
            k
            for k in (set(olds) | set(news)) - self.OUTPUTS
            if olds.get(k) != news.get(k) or unknown_paths(news.get(k))
        )
        return Diff(changed=changed, replaces=changed)

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        raise RuntimeError(f"{type_of(urn)}: every input replaces it")


class PasswordKind(Generated):
    OUTPUTS = frozenset({"result", "bcryptHash"})

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        if not isinstance(news.get("length"), int) or news["length"] < 1:
            raise CheckFailedError({"length": "a whole number of at least 1 is required"})
        return PASSWORD_DEFAULTS | news

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", {**news, "result": UNKNOWN}
        result = password(news)
        return "none", {**news, "result": result, "bcryptHash": bcrypt_hash(result)}


def bcrypt_hash(text: str) -> str:
    """`$2b$10$...` of `text` with a random salt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # removed in Python 3.13
        import crypt
    # bcrypt is what the provider produces; S324 knows crypt(3) only for its weak methods.
    return crypt.crypt(text, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**10))  # noqa: S324


def password(inputs: Mapping[str, Any]) -> str:
    """`length` characters with at least `min*` of each class left on, shuffled."""
    classes = {
        "upper": string.ascii_uppercase,
        "lower": string.ascii_lowercase,
        "numeric": string.digits,
        "special": str(inputs.get("overrideSpecial") or SPECIAL),
    }
    chosen = {k: chars for k, chars in classes.items() if inputs.get(k, True)}
    if not chosen:
        raise ValueError("every character class is off")
    drawn = [
        secrets.choice(chars)
        for k, chars in chosen.items()
        for _ in range(int(inputs.get(f"min{k.capitalize()}", 0)))
    ]
    alphabet = "".join(chosen.values())
    length = int(inputs["length"])
    if len(drawn) > length:
        raise ValueError(f"the min* counts ask for {len(drawn)} characters, more than {length}")
    drawn += [secrets.choice(alphabet) for _ in range(length - len(drawn))]
    secrets.SystemRandom().shuffle(drawn)
    return "".join(drawn)


class RandomIdKind(Generated):
    OUTPUTS = frozenset({"hex", "b64Std", "b64Url", "dec"})

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        if not isinstance(news.get("byteLength"), int) or news["byteLength"] < 1:
            raise CheckFailedError({"byteLength": "a whole number of at least 1 is required"})
        return news

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", {**news, **dict.fromkeys(self.OUTPUTS, UNKNOWN)}
        raw = secrets.token_bytes(int(news["byteLength"]))
        prefix = str(news.get("prefix") or "")
        b64_url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return prefix + b64_url, {
            **news,
            "hex": prefix + raw.hex(),
            "b64Std": prefix + base64.b64encode(raw).decode(),
            "b64Url": prefix + b64_url,
            "dec": prefix + str(int.from_bytes(raw, "big")),
        }


def kinds(config: Mapping[str, Any], engine: Engine) -> dict[str, Kind]:
    return {PASSWORD: PasswordKind(), RANDOM_ID: RandomIdKind()}


def main() -> None:
    from tests.standin.versions import RANDOM_VERSION

    serve(Provider(PLUGIN_NAME, RANDOM_VERSION, kinds), sys.argv[1:])


if __name__ == "__main__":
    main()
