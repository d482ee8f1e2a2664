"""Tests for wireclient.rules.options: the option table, validation, and the merge of URI and
keyword options."""

from __future__ import annotations

import enum
from typing import Any, Callable, Dict, List, Mapping, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireclient.errors import ConfigurationError
from wireclient.rules.options import (
    AUTH_MECHANISMS,
    DEFAULT_MECHANISM,
    SCRAM_SHA_1,
    SCRAM_SHA_256,
    UNSUPPORTED_MECHANISMS,
    check_auth_mechanism,
    merge_options,
    validate_options,
    validate_uri_options,
)
from wireclient.rules.uri import parse_uri
from wireclient.transport import auth


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
        from wireclient.sdam.read_preferences import ReadPreference

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
        bad_options({"compressors": 3}, "compressors")
        bad_options({"compressors": ["zlib", 3]}, "compressors")

    def test_unknown_compressors_are_ignored_with_a_warning(self) -> None:
        """The compression spec: an unknown name MUST warn and MUST NOT be offered."""
        with pytest.warns(UserWarning, match="unknown compressor 'brotli' ignored"):
            assert validate_options({"compressors": ["brotli", "zlib"]}) == {
                "compressors": ["zlib"]
            }
        with pytest.warns(UserWarning, match="'lz4'"):
            assert validate_uri_options([("compressors", "lz4")]) == {"compressors": []}

    def test_zlib_compression_level(self) -> None:
        for level in (-1, 0, 6, 9):
            assert validate_options({"zlibCompressionLevel": level}) == {
                "zlibCompressionLevel": level
            }
        assert validate_uri_options([("zlibcompressionlevel", "-1")]) == {
            "zlibCompressionLevel": -1
        }
        bad_options({"zlibCompressionLevel": 10}, "zlibCompressionLevel", "between -1 and 9")
        bad_options({"zlibCompressionLevel": -2}, "zlibCompressionLevel", ">= -1")
        bad_options({"zlibCompressionLevel": "6"}, "zlibCompressionLevel", "an int")

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


# ------------------------------------------------------------------------------ merge_options

# Each combination check as two halves that may come from the URI, the keywords, or one each:
# (name, one half, the other half, a fragment of the error).
_COMBINATIONS: List[Tuple[str, Dict[str, Any], Dict[str, Any], str]] = [
    ("pool sizes", {"minPoolSize": 5}, {"maxPoolSize": 2}, "minPoolSize"),
    ("w=0 and journal", {"w": 0}, {"journal": True}, "journal"),
    ("tls and tlsCAFile", {"tls": False}, {"tlsCAFile": "ca.pem"}, "tlsCAFile"),
    (
        "tls and tlsCertificateKeyFile",
        {"tls": False},
        {"tlsCertificateKeyFile": "k.pem"},
        "tlsCertificateKeyFile",
    ),
    (
        "tls and tlsAllowInvalidCertificates",
        {"tls": False},
        {"tlsAllowInvalidCertificates": True},
        "tlsAllowInvalidCertificates",
    ),
    (
        "tls and tlsAllowInvalidHostnames",
        {"tls": False},
        {"tlsAllowInvalidHostnames": False},
        "tlsAllowInvalidHostnames",
    ),
    (
        "tags with primary",
        {"readPreference": "primary"},
        {"readPreferenceTags": [{"dc": "ny"}]},
        "readPreferenceTags",
    ),
]


def _placements(
    first: Dict[str, Any], second: Dict[str, Any]
) -> List[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    both = {**first, **second}
    return [
        ("uri only", both, {}),
        ("keywords only", {}, both),
        ("mixed", first, second),
        ("mixed the other way", second, first),
    ]


def bad_merge(uri_options: Mapping[str, Any], keywords: Mapping[str, Any], *fragments: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        merge_options(uri_options, keywords)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


class TestMergeOptions:
    @pytest.mark.parametrize(
        "first, second, fragment",
        [case[1:] for case in _COMBINATIONS],
        ids=[case[0] for case in _COMBINATIONS],
    )
    def test_every_combination_check_fires_wherever_the_halves_come_from(
        self, first: Dict[str, Any], second: Dict[str, Any], fragment: str
    ) -> None:
        for where, uri_options, keywords in _placements(first, second):
            message = bad_merge(uri_options, keywords, fragment)
            assert "more than once" not in message, where

    @pytest.mark.parametrize(
        "first, second", [case[1:3] for case in _COMBINATIONS], ids=[c[0] for c in _COMBINATIONS]
    )
    def test_each_half_alone_is_fine(self, first: Dict[str, Any], second: Dict[str, Any]) -> None:
        for half in (first, second):
            assert merge_options(half, {}) == half
            assert merge_options({}, half) == half

    def test_keyword_overrides_uri_and_is_not_given_twice(self) -> None:
        assert merge_options({"maxPoolSize": 5}, {"max_pool_size": 10}) == {"maxPoolSize": 10}
        assert merge_options({"maxPoolSize": 5}, {"MAXPOOLSIZE": 10}) == {"maxPoolSize": 10}
        assert merge_options({"tls": True}, {"ssl": False}) == {"tls": False}
        assert merge_options({"journal": True}, {"j": False}) == {"journal": False}
        assert merge_options(
            {"readPreference": "secondary", "readPreferenceTags": [{"dc": "ny"}]},
            {"tag_sets": [{"dc": "sf"}, {}]},
        ) == {"readPreference": "secondary", "readPreferenceTags": [{"dc": "sf"}, {}]}

    def test_override_can_make_or_break_a_combination(self) -> None:
        # the URI's maxPoolSize=2 is replaced, so minPoolSize=5 fits
        assert merge_options({"maxPoolSize": 2}, {"maxPoolSize": 10, "minPoolSize": 5}) == {
            "maxPoolSize": 10,
            "minPoolSize": 5,
        }
        assert merge_options({"w": 0, "journal": False}, {"w": 1, "j": True}) == {
            "w": 1,
            "journal": True,
        }
        assert merge_options({"tls": False}, {"tls": True, "tlsCAFile": "ca.pem"}) == {
            "tls": True,
            "tlsCAFile": "ca.pem",
        }
        # ... and replacing one value can break a combination that was fine in the URI
        bad_merge({"minPoolSize": 5, "maxPoolSize": 10}, {"maxPoolSize": 2}, "minPoolSize")
        bad_merge({"w": 1, "journal": True}, {"w": 0}, "journal")
        bad_merge({"tls": True, "tlsCAFile": "ca.pem"}, {"ssl": False}, "tlsCAFile")
        bad_merge(
            {"readPreference": "secondary", "readPreferenceTags": [{"dc": "ny"}]},
            {"read_preference": "primary"},
            "readPreferenceTags",
        )

    def test_two_spellings_among_the_keywords_are_still_refused(self) -> None:
        bad_merge({}, {"max_pool_size": 1, "maxPoolSize": 1}, "'maxPoolSize'", "more than once")
        bad_merge({"tls": True}, {"ssl": True, "tls": True}, "'tls'", "more than once")

    def test_none_keyword_does_not_override(self) -> None:
        assert merge_options({"w": 2, "maxPoolSize": 3}, {"w": None, "max_pool_size": None}) == {
            "w": 2,
            "maxPoolSize": 3,
        }

    def test_keyword_values_are_validated(self) -> None:
        bad_merge({"maxPoolSize": 5}, {"max_pool_size": "10"}, "'maxPoolSize'", "an int")
        bad_merge({}, {"fooBar": 1}, "unknown option", "'fooBar'")

    def test_uri_options_are_validated_under_uri_names(self) -> None:
        bad_merge({"maxPoolSize": "5"}, {}, "'maxPoolSize'", "an int")
        bad_merge({"max_pool_size": 5}, {}, "unknown option", "'max_pool_size'")
        assert merge_options({"MaxPoolSize": 5, "ssl": True}, {}) == {"maxPoolSize": 5, "tls": True}

    def test_not_mappings(self) -> None:
        bad_merge([("w", 1)], {}, "uri_options", "mapping")  # type: ignore[arg-type]
        bad_merge({}, [("w", 1)], "keyword_options", "mapping")  # type: ignore[arg-type]

    def test_returns_a_new_dict_and_leaves_its_inputs_alone(self) -> None:
        uri_options: Dict[str, Any] = {"w": 1, "maxPoolSize": 4}
        keywords: Dict[str, Any] = {"w": 2}
        merged = merge_options(uri_options, keywords)
        assert merged == {"w": 2, "maxPoolSize": 4}
        assert uri_options == {"w": 1, "maxPoolSize": 4} and keywords == {"w": 2}
        assert merged is not uri_options and merged is not keywords

    def test_keywords_alone_are_validate_options(self) -> None:
        keywords = {"max_pool_size": 50, "read_preference": "secondary", "tag_sets": ["dc:ny"]}
        assert merge_options({}, keywords) == validate_options(keywords)

    def test_parsed_uri_options_merge_with_nothing_unchanged(self) -> None:
        options = parse_uri(
            "mongodb://h/?w=majority&readPreference=nearest&readPreferenceTags=dc:ny"
            "&readPreferenceTags=&compressors=zlib&ssl=true&maxPoolSize=9&j=true"
        ).options
        assert merge_options(options, {}) == options


@given(
    st.dictionaries(st.sampled_from(["w", "maxPoolSize", "minPoolSize"]), st.integers(1, 9)),
    st.dictionaries(st.sampled_from(["w", "maxPoolSize", "minPoolSize"]), st.integers(1, 9)),
)
def test_merge_is_keyword_over_uri(uri_options: Dict[str, int], keywords: Dict[str, int]) -> None:
    expected = {**uri_options, **keywords}
    try:
        validate_options(expected)
    except ConfigurationError:
        with pytest.raises(ConfigurationError):
            merge_options(uri_options, keywords)
    else:
        assert merge_options(uri_options, keywords) == expected


# ------------------------------------------------ what Connection(uri, **keywords) will check


def connection_options(uri: str, **keywords: Any) -> Dict[str, Any]:
    """The options ``Connection(uri, _connect=False, **keywords)`` uses (validated once,
    after the merge, by ``merge_options``)."""
    from wireclient import Connection

    options = Connection(uri, _connect=False, **keywords)._parts.options
    assert options == merge_options(parse_uri(uri).options, keywords)
    return options


class TestConnectionOptions:
    @pytest.mark.parametrize(
        "uri, keywords, fragment",
        [
            ("mongodb://h/?tls=false", {"tlsCAFile": "ca.pem"}, "tlsCAFile"),
            ("mongodb://h/?ssl=false", {"tlsAllowInvalidHostnames": True}, "tls"),
            ("mongodb://h/?tlsCAFile=ca.pem", {"tls": False}, "tlsCAFile"),
            ("mongodb://h/?maxPoolSize=2", {"minPoolSize": 5}, "minPoolSize"),
            ("mongodb://h/?minPoolSize=5", {"max_pool_size": 2}, "maxPoolSize"),
            ("mongodb://h/?w=0", {"j": True}, "journal"),
            ("mongodb://h/?journal=true", {"w": 0}, "journal"),
            ("mongodb://h/?readPreference=primary", {"tag_sets": [{"dc": "ny"}]}, "primary"),
            ("mongodb://h/?readPreferenceTags=dc:ny", {"read_preference": 0}, "primary"),
        ],
    )
    def test_combinations_across_uri_and_keywords_are_refused(
        self, uri: str, keywords: Dict[str, Any], fragment: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=fragment):
            connection_options(uri, **keywords)

    def test_keyword_overrides_the_uri(self) -> None:
        assert connection_options("mongodb://h/?maxPoolSize=5", max_pool_size=10) == {
            "maxPoolSize": 10
        }
        assert connection_options("mongodb://h/?ssl=true", tls=False) == {"tls": False}
        assert connection_options("mongodb://h/?w=0", w="majority", j=True) == {
            "w": "majority",
            "journal": True,
        }
        assert connection_options(
            "mongodb://h/?maxPoolSize=2&minPoolSize=1", max_pool_size=10, minPoolSize=5
        ) == {"maxPoolSize": 10, "minPoolSize": 5}

    def test_unsupported_mechanism_in_the_uri(self) -> None:
        with pytest.raises(ConfigurationError, match="'PLAIN' is not supported by wireclient"):
            connection_options("mongodb://alice:pw@h/?authMechanism=PLAIN")


class TestAcceptedOptionsDoWhatTheySay:
    """An option wireclient does not implement (or that means nothing for the class it is
    given to) is refused, never validated and then ignored."""

    @pytest.mark.parametrize(
        "uri",
        [
            "mongodb://h/?heartbeatFrequencyMS=500",
            "mongodb://h/?localThresholdMS=5",
            "mongodb://h/?serverSelectionTimeoutMS=100",
            "mongodb://h/?readPreference=secondary",
            "mongodb://h/?readPreference=nearest&readPreferenceTags=dc:ny",
            "mongodb://h/?directConnection=false",
            "mongodb://h/?retryWrites=true",
        ],
    )
    def test_single_server_connection_refuses(self, uri: str) -> None:
        from wireclient import Connection

        with pytest.raises(ConfigurationError):
            Connection(uri, _connect=False)

    def test_single_server_connection_accepts_what_it_implements(self) -> None:
        from wireclient import Connection

        c = Connection(
            "mongodb://h/?readPreference=primary&directConnection=true&retryWrites=false"
            "&minPoolSize=2&maxIdleTimeMS=1500",
            _connect=False,
        )
        assert c.pool.min_size == 2 and c.pool.max_idle_time == 1.5

    def test_replica_set_connection_refuses_direct_connection(self) -> None:
        from wireclient import ReplicaSetConnection

        with pytest.raises(ConfigurationError, match="directConnection"):
            ReplicaSetConnection("mongodb://h/?directConnection=true", _connect=False)


class TestPymongoSmallPoints:
    """pymongo 2.8 users hit these: Request.connection, the scheme in any case, port 0."""

    def test_request_knows_its_connection(self) -> None:
        from wireclient import Connection

        c = Connection("mongodb://h/", _connect=False, auto_start_request=False)
        request = c.start_request()
        assert request.connection is c
        request.end()
        assert not c.in_request()

    @pytest.mark.parametrize("uri", ["MongoDB://h:2/", "MONGODB://h:2/", "mongoDB://h:2/"])
    def test_scheme_is_case_insensitive(self, uri: str) -> None:
        from wireclient import Connection

        assert Connection(uri, _connect=False)._parts.hosts == (("h", 2),)

    @pytest.mark.parametrize("port", [0, -1, 65536])
    def test_port_out_of_range_is_refused(self, port: int) -> None:
        from wireclient import Connection

        with pytest.raises(ConfigurationError, match="port"):
            Connection("h", port, _connect=False)


def test_wtimeout_keyword_sets_the_default_write_concern() -> None:
    from wireclient import Connection

    c = Connection("mongodb://h/", _connect=False, w=2, wtimeout=500)
    assert c._settings.write_concern.resolve(None, None) == (True, {"w": 2, "wtimeout": 500})
    with pytest.raises(ConfigurationError, match="more than once"):
        Connection("mongodb://h/", _connect=False, wtimeout=1, wTimeoutMS=2)
