"""Tests for wireclient.options: the option table and validation."""

from __future__ import annotations

import enum
from typing import Any, Callable, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireclient import auth
from wireclient.errors import ConfigurationError
from wireclient.options import (
    AUTH_MECHANISMS,
    DEFAULT_MECHANISM,
    SCRAM_SHA_1,
    SCRAM_SHA_256,
    UNSUPPORTED_MECHANISMS,
    check_auth_mechanism,
    validate_options,
    validate_uri_options,
)
from wireclient.uri import parse_uri


def bad_options(options: Dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        validate_options(options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --------------------------------------------------------------------------- validate_options


class _Mode(enum.Enum):
    PRIMARY = 0
    SECONDARY_PREFERRED = 3


class _FakeReadPreference:
    def __init__(self, mode: str, tag_sets: Any = None) -> None:
        self.mode = mode
        self.tag_sets = tag_sets if tag_sets is not None else [{}]


class TestValidateOptions:
    def test_python_spellings(self) -> None:
        assert validate_options(
            {
                "max_pool_size": 50,
                "auto_start_request": False,
                "use_greenlets": True,
                "read_preference": "secondary",
                "replicaset": "rs0",
                "tag_sets": [{"dc": "ny"}, {}],
                "secondary_acceptable_latency_ms": 20,
            }
        ) == {
            "maxPoolSize": 50,
            "autoStartRequest": False,
            "useGreenlets": True,
            "readPreference": "secondary",
            "replicaSet": "rs0",
            "readPreferenceTags": [{"dc": "ny"}, {}],
            "localThresholdMS": 20,
        }

    def test_uri_names_any_case(self) -> None:
        assert validate_options(
            {"connectTimeoutMS": 5, "SOCKETTIMEOUTMS": 6, "ssl": True, "j": False, "w": "majority"}
        ) == {
            "connectTimeoutMS": 5,
            "socketTimeoutMS": 6,
            "tls": True,
            "journal": False,
            "w": "majority",
        }

    def test_none_means_not_given(self) -> None:
        assert validate_options({"w": None, "safe": True, "socketTimeoutMS": None}) == {
            "safe": True
        }

    def test_returns_new_dict(self) -> None:
        given: Dict[str, Any] = {"w": 1}
        result = validate_options(given)
        assert result == given and result is not given

    def test_booleans_must_be_real_bools(self) -> None:
        assert validate_options({"safe": False}) == {"safe": False}
        for junk in ("true", "false", 1, 0, None.__class__):
            bad_options({"safe": junk}, "'safe'", "True or False")

    def test_integers_must_be_real_ints(self) -> None:
        for junk in ("100", 1.5, True, None.__class__):
            bad_options({"max_pool_size": junk}, "'maxPoolSize'", "an int", "'max_pool_size'")
        bad_options({"max_pool_size": 0}, "'maxPoolSize'", ">= 1")
        bad_options({"connectTimeoutMS": -5}, "'connectTimeoutMS'", ">= 0")
        bad_options({"connectTimeoutMS": 2**31}, "'connectTimeoutMS'", "<=")

    def test_w(self) -> None:
        assert validate_options({"w": 0}) == {"w": 0}
        assert validate_options({"w": 2}) == {"w": 2}
        assert validate_options({"w": "2"}) == {"w": 2}
        assert validate_options({"w": "majority"}) == {"w": "majority"}
        bad_options({"w": -1}, "'w'")
        bad_options({"w": True}, "'w'")
        bad_options({"w": 1.0}, "'w'")
        bad_options({"w": ""}, "'w'")

    def test_read_preference_forms(self) -> None:
        for value in (3, "secondaryPreferred", "SECONDARY_PREFERRED", _Mode.SECONDARY_PREFERRED):
            assert validate_options({"read_preference": value}) == {
                "readPreference": "secondaryPreferred"
            }
        assert validate_options({"readPreference": 0}) == {"readPreference": "primary"}
        assert validate_options({"readPreference": 4}) == {"readPreference": "nearest"}
        bad_options({"read_preference": 5}, "readPreference", "5")
        bad_options({"read_preference": True}, "readPreference")
        bad_options({"read_preference": "fast"}, "readPreference", "'fast'")

    def test_read_preference_object(self) -> None:
        """Anything with a ``mode`` string, like read_preferences.ReadPreference, is accepted;
        its non-trivial tag sets become readPreferenceTags."""
        assert validate_options({"read_preference": _FakeReadPreference("nearest")}) == {
            "readPreference": "nearest"
        }
        tagged = _FakeReadPreference("secondary", [{"dc": "ny"}, {}])
        assert validate_options({"read_preference": tagged}) == {
            "readPreference": "secondary",
            "readPreferenceTags": [{"dc": "ny"}, {}],
        }
        assert validate_options({"read_preference": tagged, "tag_sets": ["dc:ny", ""]}) == {
            "readPreference": "secondary",
            "readPreferenceTags": [{"dc": "ny"}, {}],
        }
        bad_options({"read_preference": tagged, "tag_sets": [{"dc": "sf"}]}, "conflicts")
        bad_options({"read_preference": _FakeReadPreference("fastest")}, "'fastest'")

    def test_real_read_preference_class(self) -> None:
        from wireclient.read_preferences import ReadPreference

        pref = ReadPreference.SECONDARY_PREFERRED
        assert validate_options({"read_preference": pref}) == {
            "readPreference": "secondaryPreferred"
        }

    def test_tags(self) -> None:
        assert validate_options({"readPreferenceTags": "dc:ny"}) == {
            "readPreferenceTags": [{"dc": "ny"}]
        }
        assert validate_options({"readPreferenceTags": ("dc:ny", {"rack": "1"}, "")}) == {
            "readPreferenceTags": [{"dc": "ny"}, {"rack": "1"}, {}]
        }
        bad_options({"tag_sets": {"dc": "ny"}}, "readPreferenceTags", "list")
        bad_options({"tag_sets": [{"dc": 1}]}, "readPreferenceTags", "str")
        bad_options({"tag_sets": [{"": "x"}]}, "readPreferenceTags", "empty")
        bad_options({"tag_sets": [42]}, "readPreferenceTags")
        bad_options(
            {"read_preference": "primary", "tag_sets": [{"dc": "ny"}]}, "readPreferenceTags"
        )

    def test_compressors(self) -> None:
        assert validate_options({"compressors": ["zstd", "zlib"]}) == {
            "compressors": ["zstd", "zlib"]
        }
        assert validate_options({"compressors": "snappy,zlib"}) == {
            "compressors": ["snappy", "zlib"]
        }
        bad_options({"compressors": ["brotli"]}, "compressors", "brotli")
        bad_options({"compressors": 3}, "compressors")

    def test_strings(self) -> None:
        assert validate_options({"appName": "a"}) == {"appName": "a"}
        bad_options({"replicaSet": 5}, "replicaSet", "str")
        bad_options({"replicaSet": ""}, "replicaSet", "empty")
        bad_options({"authMechanism": "kerberos"}, "authMechanism")

    def test_unknown_name(self) -> None:
        bad_options({"max_poolsize": 1}, "unknown option", "'max_poolsize'")
        bad_options({"document_class": dict}, "unknown option", "'document_class'")

    def test_non_string_key(self) -> None:
        bad_options({1: 2}, "option names must be str")  # type: ignore[dict-item]

    def test_not_a_mapping(self) -> None:
        with pytest.raises(ConfigurationError, match="mapping"):
            validate_options([("w", 1)])  # type: ignore[arg-type]

    def test_two_spellings_of_one_option(self) -> None:
        bad_options({"max_pool_size": 1, "maxPoolSize": 1}, "'maxPoolSize'", "more than once")
        bad_options({"ssl": True, "tls": True}, "'tls'", "more than once")
        bad_options({"tag_sets": [], "readPreferenceTags": []}, "more than once")

    def test_combinations(self) -> None:
        bad_options({"minPoolSize": 5, "max_pool_size": 4}, "minPoolSize", "maxPoolSize")
        bad_options({"w": 0, "j": True}, "journal")
        bad_options({"tls": False, "tlsCAFile": "ca.pem"}, "tlsCAFile")

    def test_accepts_parsed_uri_options(self) -> None:
        options = parse_uri(
            "mongodb://h/?w=majority&readPreference=nearest&readPreferenceTags=dc:ny"
            "&readPreferenceTags=&compressors=zlib&ssl=true&maxPoolSize=9&j=true"
        ).options
        assert validate_options(options) == options


# (URI spelling, URI value, expected typed value) for every option kind.
_VALID_OPTIONS: List[Tuple[str, str, str, Any]] = [
    ("replicaSet", "replicaSet", "rs0", "rs0"),
    ("w", "w", "2", 2),
    ("wTimeoutMS", "wTimeoutMS", "100", 100),
    ("journal", "j", "true", True),
    ("maxPoolSize", "maxPoolSize", "20", 20),
    ("minPoolSize", "minPoolSize", "1", 1),
    ("connectTimeoutMS", "connectTimeoutMS", "3000", 3000),
    ("socketTimeoutMS", "socketTimeoutMS", "0", 0),
    ("readPreference", "readPreference", "secondary", "secondary"),
    ("readPreferenceTags", "readPreferenceTags", "dc:ny", [{"dc": "ny"}]),
    ("tls", "ssl", "true", True),
    ("tlsCAFile", "tlsCAFile", "%2Fca.pem", "/ca.pem"),
    ("appName", "appName", "tool", "tool"),
    ("compressors", "compressors", "zstd,zlib", ["zstd", "zlib"]),
    ("authSource", "authSource", "admin", "admin"),
    ("useGreenlets", "useGreenlets", "false", False),
    ("autoStartRequest", "autoStartRequest", "true", True),
    ("retryWrites", "retryWrites", "false", False),
]


@given(
    st.lists(st.sampled_from(_VALID_OPTIONS), unique_by=lambda o: o[0], max_size=8),
    st.randoms(use_true_random=False),
)
def test_options_any_case_typed_and_revalidated(
    chosen: List[Tuple[str, str, str, Any]], rnd: Any
) -> None:
    def scramble(name: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in name)

    query = "&".join(f"{scramble(spelling)}={value}" for _, spelling, value, _ in chosen)
    options = parse_uri(f"mongodb://h/?{query}").options
    assert options == {canonical: typed for canonical, _, _, typed in chosen}
    assert validate_options(options) == options


# ------------------------------------------------------------------------ validate_uri_options


class TestValidateURIOptions:
    def test_pairs_in_order(self) -> None:
        assert validate_uri_options(
            [("SSL", "true"), ("readPreferenceTags", "dc:ny"), ("readpreferencetags", "")]
        ) == {"tls": True, "readPreferenceTags": [{"dc": "ny"}, {}]}

    def test_same_as_parse_uri(self) -> None:
        query = "maxPoolSize=9&w=majority&j=true&compressors=zlib"
        pairs = [tuple(item.split("=")) for item in query.split("&")]
        assert validate_uri_options(pairs) == parse_uri(f"mongodb://h/?{query}").options

    def test_keyword_spellings_are_unknown(self) -> None:
        with pytest.raises(ConfigurationError, match="unknown option 'max_pool_size'"):
            validate_uri_options([("max_pool_size", "1")])

    def test_combinations(self) -> None:
        with pytest.raises(ConfigurationError, match="minPoolSize"):
            validate_uri_options([("maxPoolSize", "2"), ("minPoolSize", "3")])


# ------------------------------------------------------------------ authentication mechanisms


class TestAuthMechanisms:
    def test_one_definition_shared_with_auth(self) -> None:
        assert AUTH_MECHANISMS == (SCRAM_SHA_256, SCRAM_SHA_1)
        assert auth.SUPPORTED_MECHANISMS is AUTH_MECHANISMS
        assert auth.UNSUPPORTED_MECHANISMS is UNSUPPORTED_MECHANISMS
        assert (auth.SCRAM_SHA_1, auth.SCRAM_SHA_256) == (SCRAM_SHA_1, SCRAM_SHA_256)

    @pytest.mark.parametrize(
        "given, expected",
        [
            ("SCRAM-SHA-1", "SCRAM-SHA-1"),
            ("scram-sha-1", "SCRAM-SHA-1"),
            ("SCRAM-SHA-256", "SCRAM-SHA-256"),
            ("Scram-Sha-256", "SCRAM-SHA-256"),
            ("default", DEFAULT_MECHANISM),
        ],
    )
    def test_implemented_mechanisms_are_accepted(self, given: str, expected: str) -> None:
        assert check_auth_mechanism(given) == expected
        assert validate_options({"authMechanism": given}) == {"authMechanism": expected}
        assert parse_uri(f"mongodb://u@h/?authMechanism={given}").options == {
            "authMechanism": expected
        }
        credentials = auth.make_credentials("u", "pw", mechanism=given)
        assert credentials.mechanism == (None if expected == DEFAULT_MECHANISM else expected)

    @pytest.mark.parametrize("mechanism", sorted(UNSUPPORTED_MECHANISMS))
    def test_known_but_not_implemented_mechanisms_are_refused_as_such(self, mechanism: str) -> None:
        for call in (
            lambda: parse_uri(f"mongodb://u@h/?authMechanism={mechanism.lower()}"),
            lambda: validate_options({"authMechanism": mechanism}),
            lambda: auth.make_credentials("u", "pw", mechanism=mechanism),
        ):
            with pytest.raises(ConfigurationError) as info:
                call()
            message = str(info.value)
            assert f"{mechanism!r} is not supported by wireclient" in message
            assert "does not implement" in message
            assert "unknown" not in message
            assert "SCRAM-SHA-1" in message and "SCRAM-SHA-256" in message

    @pytest.mark.parametrize("mechanism", ["MD5", "SCRAM-SHA-512", "kerberos", "scram"])
    def test_unknown_mechanisms(self, mechanism: str) -> None:
        for call in (
            lambda: parse_uri(f"mongodb://u@h/?authMechanism={mechanism}"),
            lambda: validate_options({"authMechanism": mechanism}),
            lambda: auth.make_credentials("u", "pw", mechanism=mechanism),
        ):
            with pytest.raises(ConfigurationError, match=f"unknown authMechanism '{mechanism}'"):
                call()

    @pytest.mark.parametrize(
        "name", [*AUTH_MECHANISMS, DEFAULT_MECHANISM, *UNSUPPORTED_MECHANISMS, "NONE", "X"]
    )
    def test_validator_and_auth_agree_on_every_name(self, name: str) -> None:
        def outcome(check: Callable[[], Any]) -> Any:
            try:
                return check()
            except ConfigurationError as exc:
                return str(exc)

        validated = outcome(lambda: validate_options({"authMechanism": name})["authMechanism"])
        made = outcome(lambda: auth.make_credentials("u", "pw", mechanism=name).mechanism)
        assert validated == (DEFAULT_MECHANISM if made is None else made)
