"""Tests for wireclient.rules.uri: connection-string parsing, host lists and addresses.

The option table and its validation are tested in test_options.py."""

from __future__ import annotations

from typing import Any, List, Tuple
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wireclient.rules.options
import wireclient.rules.uri
from wireclient.errors import ConfigurationError
from wireclient.rules.uri import (
    UNIX_SOCKET_PORT,
    ParsedURI,
    format_address,
    is_unix_socket,
    parse_host,
    parse_uri,
    split_hosts,
)


def bad_uri(uri: str, *fragments: str) -> str:
    """Assert parse_uri(uri) raises ConfigurationError mentioning every fragment."""
    with pytest.raises(ConfigurationError) as info:
        parse_uri(uri)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ----------------------------------------------------------------------------- valid forms


class TestValidURIs:
    def test_minimal(self) -> None:
        parsed = parse_uri("mongodb://localhost")
        assert parsed == ParsedURI(hosts=(("localhost", 27017),))
        assert parsed.username is None and parsed.password is None
        assert parsed.database is None and parsed.collection is None
        assert parsed.options == {}

    def test_trailing_slash_and_empty_query(self) -> None:
        assert parse_uri("mongodb://localhost/") == parse_uri("mongodb://localhost")
        assert parse_uri("mongodb://localhost/?") == parse_uri("mongodb://localhost")

    def test_port_and_default_port(self) -> None:
        assert parse_uri("mongodb://h:27018").hosts == (("h", 27018),)
        assert parse_uri("mongodb://h", default_port=1234).hosts == (("h", 1234),)
        assert parse_uri("mongodb://h:1").hosts == (("h", 1),)
        assert parse_uri("mongodb://h:65535").hosts == (("h", 65535),)
        assert parse_uri("mongodb://h:027017").hosts == (("h", 27017),)

    def test_several_hosts_keep_order(self) -> None:
        parsed = parse_uri("mongodb://c:3,a:1,b")
        assert parsed.hosts == (("c", 3), ("a", 1), ("b", 27017))

    def test_host_names_are_lower_cased(self) -> None:
        assert parse_uri("mongodb://DB.Example.COM:1").hosts == (("db.example.com", 1),)

    def test_ipv4(self) -> None:
        assert parse_uri("mongodb://127.0.0.1:27018").hosts == (("127.0.0.1", 27018),)

    def test_ipv6_in_brackets(self) -> None:
        parsed = parse_uri("mongodb://[::1]:27018,[2001:DB8::0001],h")
        assert parsed.hosts == (("::1", 27018), ("2001:db8::1", 27017), ("h", 27017))

    def test_ipv6_with_zone(self) -> None:
        assert parse_uri("mongodb://[fe80::1%25eth0]:5").hosts == (("fe80::1%eth0", 5),)

    def test_unix_socket(self) -> None:
        parsed = parse_uri("mongodb://%2Ftmp%2Fmongodb-27017.sock/db")
        assert parsed.hosts == (("/tmp/mongodb-27017.sock", UNIX_SOCKET_PORT),)
        assert UNIX_SOCKET_PORT == 0
        assert parsed.database == "db"
        assert is_unix_socket(parsed.hosts[0][0])

    @pytest.mark.parametrize(
        "uri, hosts",
        [
            ("mongodb://mongodb-27017.sock", (("mongodb-27017.sock", 27017),)),
            ("mongodb://mongodb-27017.sock:27018/", (("mongodb-27017.sock", 27018),)),
            ("mongodb://Rel.SOCK,%2Ftmp%2Fa.sock", (("rel.sock", 27017), ("/tmp/a.sock", 0))),
        ],
    )
    def test_a_sock_name_without_a_slash_is_a_host_name(
        self, uri: str, hosts: Tuple[Tuple[str, int], ...]
    ) -> None:
        # the connection-string specification's valid-unix_socket tests: only a path (a '/')
        # ending in .sock is a unix domain socket; a bare name is a host, lower-cased, port kept
        assert parse_uri(uri).hosts == hosts

    def test_unix_socket_keeps_case_and_mixes_with_tcp(self) -> None:
        parsed = parse_uri("mongodb://%2FTmp%2FA.sock,h:2")
        assert parsed.hosts == (("/Tmp/A.sock", 0), ("h", 2))

    def test_username_and_password(self) -> None:
        parsed = parse_uri("mongodb://alice:s3cret@h/admin")
        assert parsed.username == "alice" and parsed.password == "s3cret"
        assert parsed.database == "admin"

    def test_username_only_and_empty_password(self) -> None:
        assert parse_uri("mongodb://alice@h").password is None
        parsed = parse_uri("mongodb://alice:@h")
        assert parsed.username == "alice" and parsed.password == ""

    def test_credentials_are_percent_decoded(self) -> None:
        parsed = parse_uri("mongodb://us%40er%3A:p%40ss%3Aw%2Fo%3Frd%25@h")
        assert parsed.username == "us@er:"
        assert parsed.password == "p@ss:w/o?rd%"

    def test_utf8_credentials(self) -> None:
        parsed = parse_uri("mongodb://%C3%BCser:%E2%82%AC@h")
        assert parsed.username == "üser" and parsed.password == "€"

    def test_plus_is_not_a_space(self) -> None:
        parsed = parse_uri("mongodb://a+b:c+d@h/?appName=x+y")
        assert parsed.username == "a+b" and parsed.password == "c+d"
        assert parsed.options["appName"] == "x+y"

    def test_password_hidden_from_repr(self) -> None:
        parsed = parse_uri("mongodb://alice:hunter2@h")
        assert "hunter2" not in repr(parsed)
        assert "alice" in repr(parsed)

    def test_parsed_uri_is_frozen(self) -> None:
        parsed = parse_uri("mongodb://h")
        with pytest.raises(AttributeError, match="read-only"):
            parsed.database = "x"  # type: ignore[misc]
        with pytest.raises(AttributeError, match="read-only"):
            del parsed.hosts
        assert parsed == parse_uri("mongodb://h") and parsed != parse_uri("mongodb://h2")

    def test_database_and_collection(self) -> None:
        parsed = parse_uri("mongodb://h/db.coll")
        assert (parsed.database, parsed.collection) == ("db", "coll")
        parsed = parse_uri("mongodb://h/db.coll.sub?w=1")
        assert (parsed.database, parsed.collection) == ("db", "coll.sub")
        assert parsed.options == {"w": 1}

    def test_database_is_percent_decoded(self) -> None:
        assert parse_uri("mongodb://h/my%2Ddb").database == "my-db"
        assert parse_uri("mongodb://h/a%40b").database == "a@b"

    def test_options_without_database(self) -> None:
        parsed = parse_uri("mongodb://h/?replicaSet=rs0")
        assert parsed.database is None and parsed.options == {"replicaSet": "rs0"}

    def test_scheme_is_case_insensitive(self) -> None:
        assert parse_uri("MongoDB://h").hosts == (("h", 27017),)

    def test_option_value_may_contain_equals_and_at(self) -> None:
        assert parse_uri("mongodb://h/?appName=a=b@c").options == {"appName": "a=b@c"}

    def test_percent_encoded_option_value(self) -> None:
        parsed = parse_uri("mongodb://h/?tlsCAFile=%2Fetc%2Fca%20file.pem&tls=true")
        assert parsed.options["tlsCAFile"] == "/etc/ca file.pem"


# --------------------------------------------------------------------------------- options


class TestURIOptions:
    def test_names_are_case_insensitive_and_canonical(self) -> None:
        parsed = parse_uri(
            "mongodb://h/?REPLICASET=rs&maxpoolsize=7&SocketTimeoutMS=10&readpreference=nearest"
        )
        assert parsed.options == {
            "replicaSet": "rs",
            "maxPoolSize": 7,
            "socketTimeoutMS": 10,
            "readPreference": "nearest",
        }

    @pytest.mark.parametrize(
        "name",
        [
            "wTimeoutMS",
            "connectTimeoutMS",
            "socketTimeoutMS",
            "waitQueueTimeoutMS",
            "serverSelectionTimeoutMS",
            "localThresholdMS",
            "maxIdleTimeMS",
            "minPoolSize",
        ],
    )
    def test_non_negative_integers(self, name: str) -> None:
        assert parse_uri(f"mongodb://h/?{name}=0").options == {name: 0}
        assert parse_uri(f"mongodb://h/?{name}=2500").options == {name: 2500}
        assert parse_uri(f"mongodb://h/?{name}=2147483647").options == {name: 2**31 - 1}
        bad_uri(f"mongodb://h/?{name}=-1", name, ">= 0")
        bad_uri(f"mongodb://h/?{name}=2147483648", name, "<=")
        for junk in ("1.5", "ten", "", " 1", "+1", "0x10", "1e3", "١"):
            bad_uri(f"mongodb://h/?{name}={quote(junk)}", name, "integer")

    def test_max_pool_size_at_least_one(self) -> None:
        assert parse_uri("mongodb://h/?maxPoolSize=1").options == {"maxPoolSize": 1}
        bad_uri("mongodb://h/?maxPoolSize=0", "maxPoolSize", ">= 1")

    def test_heartbeat_frequency_positive(self) -> None:
        assert parse_uri("mongodb://h/?heartbeatFrequencyMS=500").options == {
            "heartbeatFrequencyMS": 500
        }
        bad_uri("mongodb://h/?heartbeatFrequencyMS=0", "heartbeatFrequencyMS", ">= 1")

    @pytest.mark.parametrize(
        "name",
        [
            "journal",
            "safe",
            "retryWrites",
            "directConnection",
            "tls",
            "tlsAllowInvalidCertificates",
            "tlsAllowInvalidHostnames",
            "autoStartRequest",
            "useGreenlets",
        ],
    )
    def test_booleans(self, name: str) -> None:
        for text, value in (("true", True), ("false", False), ("TRUE", True), ("False", False)):
            assert parse_uri(f"mongodb://h/?{name}={text}").options == {name: value}
        for junk in ("yes", "no", "1", "0", "t", "", "on"):
            bad_uri(f"mongodb://h/?{name}={junk}", name, "'true' or 'false'")

    def test_aliases(self) -> None:
        assert parse_uri("mongodb://h/?ssl=true").options == {"tls": True}
        assert parse_uri("mongodb://h/?SSL=false").options == {"tls": False}
        assert parse_uri("mongodb://h/?j=true").options == {"journal": True}

    def test_w(self) -> None:
        assert parse_uri("mongodb://h/?w=0").options == {"w": 0}
        assert parse_uri("mongodb://h/?w=3").options == {"w": 3}
        assert parse_uri("mongodb://h/?w=majority").options == {"w": "majority"}
        assert parse_uri("mongodb://h/?w=dcTag").options == {"w": "dcTag"}
        bad_uri("mongodb://h/?w=-1", "'w'", ">= 0")
        bad_uri("mongodb://h/?w=", "'w'", "empty")

    @pytest.mark.parametrize(
        "text, mode",
        [
            ("primary", "primary"),
            ("PRIMARY", "primary"),
            ("primaryPreferred", "primaryPreferred"),
            ("primarypreferred", "primaryPreferred"),
            ("secondary", "secondary"),
            ("secondaryPreferred", "secondaryPreferred"),
            ("SECONDARY_PREFERRED", "secondaryPreferred"),
            ("nearest", "nearest"),
        ],
    )
    def test_read_preference(self, text: str, mode: str) -> None:
        assert parse_uri(f"mongodb://h/?readPreference={text}").options == {"readPreference": mode}

    def test_bad_read_preference(self) -> None:
        bad_uri("mongodb://h/?readPreference=fastest", "readPreference", "fastest", "nearest")
        bad_uri("mongodb://h/?readPreference=", "readPreference")
        bad_uri("mongodb://h/?readPreference=1", "readPreference")

    def test_read_preference_tags_repeat_in_order(self) -> None:
        parsed = parse_uri(
            "mongodb://h/?readPreference=secondary"
            "&readPreferenceTags=dc:ny,rack:1&readpreferencetags=dc:sf&readPreferenceTags="
        )
        assert parsed.options["readPreferenceTags"] == [{"dc": "ny", "rack": "1"}, {"dc": "sf"}, {}]

    def test_read_preference_tags_percent_decoded(self) -> None:
        parsed = parse_uri("mongodb://h/?readPreferenceTags=dc%3Any%2Crack%3A1")
        assert parsed.options["readPreferenceTags"] == [{"dc": "ny", "rack": "1"}]

    @pytest.mark.parametrize("tags", ["dc", "dc:ny,rack", ":ny", "dc:", "dc:ny,dc:sf", "dc:ny,"])
    def test_bad_read_preference_tags(self, tags: str) -> None:
        bad_uri(f"mongodb://h/?readPreferenceTags={tags}", "readPreferenceTags")

    def test_tags_with_primary_refused(self) -> None:
        bad_uri(
            "mongodb://h/?readPreference=primary&readPreferenceTags=dc:ny",
            "readPreferenceTags",
            "primary",
        )
        # the empty tag set matches anything, so it is harmless with primary
        parsed = parse_uri("mongodb://h/?readPreference=primary&readPreferenceTags=")
        assert parsed.options["readPreferenceTags"] == [{}]

    def test_compressors(self) -> None:
        assert parse_uri("mongodb://h/?compressors=zstd,ZLIB,snappy").options == {
            "compressors": ["zstd", "zlib", "snappy"]
        }
        assert parse_uri("mongodb://h/?compressors=zlib,zlib").options == {"compressors": ["zlib"]}
        with pytest.warns(UserWarning, match="unknown compressor 'lz4' ignored"):
            assert parse_uri("mongodb://h/?compressors=lz4,zlib").options == {
                "compressors": ["zlib"]
            }
        bad_uri("mongodb://h/?compressors=zlib,", "compressors", "empty")
        bad_uri("mongodb://h/?compressors=", "compressors")

    def test_strings(self) -> None:
        parsed = parse_uri(
            "mongodb://u@h/?replicaSet=rs0&authSource=admin&appName=my%20app"
            "&tls=true&tlsCAFile=ca.pem&tlsCertificateKeyFile=client.pem"
        )
        assert parsed.options == {
            "replicaSet": "rs0",
            "authSource": "admin",
            "appName": "my app",
            "tls": True,
            "tlsCAFile": "ca.pem",
            "tlsCertificateKeyFile": "client.pem",
        }
        for name in ("replicaSet", "authSource", "appName", "tlsCAFile", "authMechanism"):
            bad_uri(f"mongodb://h/?{name}=", name, "empty")

    def test_app_name_length(self) -> None:
        assert parse_uri("mongodb://h/?appName=" + "a" * 128).options["appName"] == "a" * 128
        bad_uri("mongodb://h/?appName=" + "a" * 129, "appName", "128")
        bad_uri("mongodb://h/?appName=" + "%C3%A9" * 65, "appName", "128")

    def test_auth_mechanism(self) -> None:
        assert parse_uri("mongodb://u@h/?authMechanism=scram-sha-256").options == {
            "authMechanism": "SCRAM-SHA-256"
        }
        assert parse_uri("mongodb://u@h/?authMechanism=SCRAM-SHA-1").options == {
            "authMechanism": "SCRAM-SHA-1"
        }
        bad_uri("mongodb://u@h/?authMechanism=MD5", "authMechanism", "MD5")

    def test_all_documented_options_at_once(self) -> None:
        uri = (
            "mongodb://u:p@a:1/db?replicaSet=rs&w=majority&wTimeoutMS=5&journal=true"
            "&maxPoolSize=10&minPoolSize=2&connectTimeoutMS=1&socketTimeoutMS=2"
            "&waitQueueTimeoutMS=3&serverSelectionTimeoutMS=4&heartbeatFrequencyMS=600"
            "&localThresholdMS=15&maxIdleTimeMS=7&authSource=admin&authMechanism=SCRAM-SHA-1"
            "&tls=true&tlsCAFile=ca&tlsCertificateKeyFile=k&tlsAllowInvalidCertificates=false"
            "&tlsAllowInvalidHostnames=false&readPreference=nearest&readPreferenceTags=a:b"
            "&appName=x&compressors=zlib&directConnection=false&retryWrites=true&safe=true"
            "&autoStartRequest=false&useGreenlets=false"
        )
        options = parse_uri(uri).options
        assert len(options) == 29
        assert options["journal"] is True and options["w"] == "majority"

    def test_tls_options_with_tls_false(self) -> None:
        bad_uri("mongodb://h/?tls=false&tlsCAFile=ca.pem", "tlsCAFile", "tls")
        bad_uri("mongodb://h/?ssl=false&tlsAllowInvalidHostnames=true", "tlsAllowInvalidHostnames")
        # without an explicit tls=false the Connection decides
        assert parse_uri("mongodb://h/?tlsCAFile=ca.pem").options == {"tlsCAFile": "ca.pem"}

    def test_min_pool_size_above_max(self) -> None:
        bad_uri("mongodb://h/?maxPoolSize=2&minPoolSize=3", "minPoolSize", "maxPoolSize")
        assert parse_uri("mongodb://h/?maxPoolSize=3&minPoolSize=3").options["minPoolSize"] == 3

    def test_unacknowledged_journaled_write(self) -> None:
        bad_uri("mongodb://h/?w=0&journal=true", "w=0", "journal")
        bad_uri("mongodb://h/?w=0&j=true", "w=0", "journal")
        assert parse_uri("mongodb://h/?w=0&journal=false").options == {"w": 0, "journal": False}

    def test_direct_connection_needs_one_host(self) -> None:
        bad_uri("mongodb://a,b/?directConnection=true", "directConnection", "one host")
        assert parse_uri("mongodb://a/?directConnection=true").options == {"directConnection": True}
        assert parse_uri("mongodb://a,b/?directConnection=false").hosts == (
            ("a", 27017),
            ("b", 27017),
        )


# ------------------------------------------------------------------------------ URI errors


class TestURIErrors:
    @pytest.mark.parametrize(
        "uri", ["localhost", "mongo://h", "mongodb:/h", "mongodb:h", "http://h", "", " mongodb://h"]
    )
    def test_wrong_scheme(self, uri: str) -> None:
        bad_uri(uri, "mongodb://")

    def test_wrong_scheme_names_it(self) -> None:
        bad_uri("postgres://h/db", "'postgres://'")

    def test_srv_refused(self) -> None:
        bad_uri("mongodb+srv://cluster0.example.net/db", "SRV", "not supported")
        bad_uri("MONGODB+SRV://cluster0.example.net", "SRV")

    def test_not_a_string(self) -> None:
        with pytest.raises(ConfigurationError, match="str"):
            parse_uri(b"mongodb://h")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "uri",
        ["mongodb://", "mongodb:///db", "mongodb://u:p@", "mongodb://u:p@/db", "mongodb:///?w=1"],
    )
    def test_no_host(self, uri: str) -> None:
        bad_uri(uri, "no host")

    @pytest.mark.parametrize("uri", ["mongodb://a,,b", "mongodb://a,", "mongodb://,a"])
    def test_empty_host_in_list(self, uri: str) -> None:
        bad_uri(uri, "empty host")

    def test_empty_host_name_with_port(self) -> None:
        bad_uri("mongodb://:27017", "empty host")

    @pytest.mark.parametrize("port", ["x", "27o17", "-1", "+1", " 1", "1.0", "١٢"])
    def test_port_not_numeric(self, port: str) -> None:
        bad_uri(f"mongodb://h:{port}", "port", "not a number")

    @pytest.mark.parametrize("port", ["0", "65536", "99999999999999999999"])
    def test_port_out_of_range(self, port: str) -> None:
        bad_uri(f"mongodb://h:{port}", "port", "out of range")

    def test_empty_port(self) -> None:
        bad_uri("mongodb://h:", "empty port")
        bad_uri("mongodb://[::1]:", "empty port")

    @pytest.mark.parametrize(
        "uri, fragment",
        [
            ("mongodb://::1", "brackets"),
            ("mongodb://::1:27017", "brackets"),
            ("mongodb://[::1", "missing ']'"),
            ("mongodb://[::1]x", "after ']'"),
            ("mongodb://[::1]:1:2", "port"),
            ("mongodb://[]", "IPv6"),
            ("mongodb://[127.0.0.1]", "IPv6"),
            ("mongodb://[::g]", "IPv6"),
        ],
    )
    def test_bad_ipv6(self, uri: str, fragment: str) -> None:
        bad_uri(uri, fragment)

    @pytest.mark.parametrize("host", ["a b", "a%20b", "a%2Fb", "a%3Fb", "a%00b", "a%5Bb", "a%25"])
    def test_bad_host_characters(self, host: str) -> None:
        bad_uri(f"mongodb://{host}:1", "invalid character", "host")

    def test_nul_in_socket_path(self) -> None:
        bad_uri("mongodb://%2Ftmp%2Fa%00.sock", "NUL", "socket")

    def test_socket_path_with_port_is_not_a_socket(self) -> None:
        bad_uri("mongodb://%2Ftmp%2Fa.sock:27017", "invalid character '/'")

    def test_options_need_slash(self) -> None:
        bad_uri("mongodb://h?w=1", "'?'", "/?")
        bad_uri("mongodb://h:1,k?w=1", "'?'")

    def test_password_with_unescaped_colon(self) -> None:
        message = bad_uri("mongodb://user:pa:ss@h", "password", "':'", "%3A")
        assert "pa:ss" not in message

    def test_password_with_unescaped_at(self) -> None:
        message = bad_uri("mongodb://user:p@ss@h", "'@'", "%40")
        assert "p@ss" not in message

    def test_password_with_unescaped_slash(self) -> None:
        message = bad_uri("mongodb://user:pa/ss@h/db", "'/'", "%2F")
        assert "ss@h" not in message
        # the silent misreading (host 'user', port 12, database '3@h') is refused too
        bad_uri("mongodb://user:12/3@h", "%2F")

    def test_password_with_unescaped_question_mark(self) -> None:
        message = bad_uri("mongodb://user:pa?ss@h/db", "%3F")
        assert "pa?ss" not in message

    def test_unescaped_at_in_database(self) -> None:
        bad_uri("mongodb://h/a@b", "%40")

    def test_empty_username(self) -> None:
        bad_uri("mongodb://@h", "empty username")
        bad_uri("mongodb://:secret@h", "empty username")

    @pytest.mark.parametrize(
        "uri, part",
        [
            ("mongodb://us%er@h", "username"),
            ("mongodb://us%4@h", "username"),
            ("mongodb://%ff@h", "username"),
            ("mongodb://u:%G0@h", "password"),
            ("mongodb://u:abc%@h", "password"),
            ("mongodb://u:%C3@h", "password"),
            ("mongodb://h%zz", "host"),
            ("mongodb://h/db%2", "database"),
            ("mongodb://h/?appName=%", "appName"),
            ("mongodb://h/?app%4Eame=%E2%82", "appName"),
            ("mongodb://h/?w%=1", "option name"),
        ],
    )
    def test_percent_encoding_errors(self, uri: str, part: str) -> None:
        bad_uri(uri, "percent-encoding", part)

    def test_percent_errors_in_password_do_not_echo_it(self) -> None:
        message = bad_uri("mongodb://u:hunter%2@h", "password")
        assert "hunter" not in message and "%2@" not in message

    @pytest.mark.parametrize("db", ["d$b", "a%20b", "a%2Fb", "a%5Cb", "a%22b", "a%00b"])
    def test_bad_database_name(self, db: str) -> None:
        bad_uri(f"mongodb://h/{db}", "database name")

    def test_empty_database_before_collection(self) -> None:
        bad_uri("mongodb://h/.coll", "empty database")

    def test_empty_collection(self) -> None:
        bad_uri("mongodb://h/db.", "empty collection")

    def test_unknown_option_is_named(self) -> None:
        bad_uri("mongodb://h/?fooBar=1", "unknown option", "'fooBar'")

    def test_unknown_option_suggests(self) -> None:
        bad_uri("mongodb://h/?maxPoolSzie=1", "'maxPoolSzie'", "did you mean 'maxPoolSize'")

    @pytest.mark.parametrize("name", ["max_pool_size", "wtimeout", "tlsInsecure", "loadBalanced"])
    def test_keyword_spellings_and_unsupported_options_are_unknown_in_uris(self, name: str) -> None:
        bad_uri(f"mongodb://h/?{name}=1", "unknown option", repr(name))

    def test_duplicate_option(self) -> None:
        bad_uri("mongodb://h/?w=1&w=2", "'w'", "more than once")
        bad_uri("mongodb://h/?maxPoolSize=1&MAXPOOLSIZE=1", "'maxPoolSize'", "more than once")

    def test_duplicate_through_alias(self) -> None:
        bad_uri("mongodb://h/?ssl=true&tls=true", "'tls'", "more than once", "'ssl'")
        bad_uri("mongodb://h/?j=true&journal=true", "'journal'", "more than once", "'j'")

    def test_alias_named_in_value_error(self) -> None:
        bad_uri("mongodb://h/?ssl=yes", "'tls'", "'ssl'")

    @pytest.mark.parametrize(
        "query, fragment",
        [
            ("w", "no '=value'"),
            ("w=1&", "empty option"),
            ("&w=1", "empty option"),
            ("w=1&&j=true", "empty option"),
            ("=1", "empty name"),
        ],
    )
    def test_malformed_query(self, query: str, fragment: str) -> None:
        bad_uri(f"mongodb://h/?{query}", fragment)

    def test_bad_default_port(self) -> None:
        with pytest.raises(ConfigurationError, match="default_port"):
            parse_uri("mongodb://h", default_port=0)


# ------------------------------------------------------------------------------ split_hosts


class TestSplitHosts:
    def test_example(self) -> None:
        assert split_hosts("a:1,b,[::1]:27018", default_port=27017) == (
            ("a", 1),
            ("b", 27017),
            ("::1", 27018),
        )

    def test_default_port(self) -> None:
        assert split_hosts("a") == (("a", 27017),)
        assert split_hosts("a,b:2", default_port=5) == (("a", 5), ("b", 2))

    def test_raw_socket_path(self) -> None:
        assert split_hosts("/tmp/mongodb-27017.sock,h") == (
            ("/tmp/mongodb-27017.sock", 0),
            ("h", 27017),
        )
        assert split_hosts("%2Ftmp%2Fm.sock") == (("/tmp/m.sock", 0),)

    @pytest.mark.parametrize(
        "hosts, fragment",
        [
            ("", "empty host list"),
            ("a,", "empty host"),
            ("a:0", "out of range"),
            ("a:x", "not a number"),
            ("mongodb://a", "not a URI"),
            ("::1", "brackets"),
        ],
    )
    def test_errors(self, hosts: str, fragment: str) -> None:
        with pytest.raises(ConfigurationError, match=fragment):
            split_hosts(hosts)

    @pytest.mark.parametrize("port", [0, 65536, -1, True, "27017", 1.5])
    def test_bad_default_port(self, port: Any) -> None:
        with pytest.raises(ConfigurationError, match="default_port"):
            split_hosts("a", default_port=port)

    def test_not_a_string(self) -> None:
        with pytest.raises(ConfigurationError, match="str"):
            split_hosts(["a", "b"])  # type: ignore[arg-type]


class TestParseHost:
    """``parse_host`` reads one address, as each entry of ``split_hosts`` is read."""

    @pytest.mark.parametrize(
        "text, expected",
        [
            ("Host:27018", ("host", 27018)),
            ("DB.Example.COM", ("db.example.com", 27017)),
            ("127.0.0.1:5", ("127.0.0.1", 5)),
            ("[::1]:27019", ("::1", 27019)),
            ("[0:0::1]", ("::1", 27017)),
            ("[2001:DB8::0001]:1", ("2001:db8::1", 1)),
            ("[fe80::1%25eth0]:5", ("fe80::1%eth0", 5)),
            ("/tmp/x.sock", ("/tmp/x.sock", 0)),
            ("/Tmp/X.sock", ("/Tmp/X.sock", 0)),
            ("%2Ftmp%2Fx.sock", ("/tmp/x.sock", 0)),
        ],
    )
    def test_forms(self, text: str, expected: Tuple[str, int]) -> None:
        assert parse_host(text) == expected
        assert split_hosts(text) == (expected,)

    def test_default_port(self) -> None:
        assert parse_host("h", default_port=5) == ("h", 5)
        assert parse_host("[::1]", 6) == ("::1", 6)
        assert parse_host("/tmp/x.sock", 7) == ("/tmp/x.sock", 0)

    def test_bare_ipv6_is_a_whole_address(self) -> None:
        """Unlike an entry of a host list, one address may be a bare IPv6 literal; it is never
        read as address:port (``fe80::1:2`` is the address ``fe80::1:2``)."""
        assert parse_host("::1") == ("::1", 27017)
        assert parse_host("0:0::1") == ("::1", 27017)
        assert parse_host("2001:DB8::1", 9) == ("2001:db8::1", 9)
        assert parse_host("fe80::1:2") == ("fe80::1:2", 27017)
        for text in ("::1", "0:0::1", "2001:DB8::1", "fe80::1:2"):
            with pytest.raises(ConfigurationError, match="brackets"):
                split_hosts(text)

    @pytest.mark.parametrize("text", ["::1:27017", "::g", "a:b:c", "[::1]:1:2"])
    def test_bad_ipv6(self, text: str) -> None:
        with pytest.raises(ConfigurationError):
            parse_host(text)

    @pytest.mark.parametrize(
        "text, fragment",
        [
            ("", "empty host"),
            (":27017", "empty host"),
            ("h:", "empty port"),
            ("h:0", "out of range"),
            ("h:65536", "out of range"),
            ("h:x", "not a number"),
            ("h:+1", "not a number"),
            ("h:١", "not a number"),
            ("[::1]:", "empty port"),
            ("[::1", "missing ']'"),
            ("[127.0.0.1]", "IPv6"),
            (" h", "invalid character"),
            ("a,b", "invalid character"),
        ],
    )
    def test_errors(self, text: str, fragment: str) -> None:
        with pytest.raises(ConfigurationError, match=fragment):
            parse_host(text)

    @pytest.mark.parametrize("port", [0, 65536, True, "27017"])
    def test_bad_default_port(self, port: Any) -> None:
        with pytest.raises(ConfigurationError, match="default_port"):
            parse_host("a", default_port=port)

    def test_not_a_string(self) -> None:
        with pytest.raises(ConfigurationError, match="str"):
            parse_host(b"h:1")  # type: ignore[arg-type]


class TestFormatHost:
    def test_forms(self) -> None:
        assert format_address(("a.example", 1)) == "a.example:1"
        assert format_address(("::1", 27017)) == "[::1]:27017"
        assert format_address(("fe80::1%eth0", 2)) == "[fe80::1%25eth0]:2"
        assert format_address(("/tmp/mongodb-27017.sock", 0)) == "%2Ftmp%2Fmongodb-27017.sock"

    def test_is_unix_socket(self) -> None:
        assert is_unix_socket("/tmp/x.sock") and is_unix_socket("/tmp/X.SOCK")
        assert not is_unix_socket("db.example") and not is_unix_socket("::1")
        assert not is_unix_socket("mongodb-27017.sock") and is_unix_socket("rel/m.sock")


def test_validate_options_is_re_exported_from_options() -> None:
    assert wireclient.rules.uri.validate_options is wireclient.rules.options.validate_options


# --------------------------------------------------------------------------------- properties

_LABEL = r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
hostnames = st.from_regex(rf"{_LABEL}(\.{_LABEL}){{0,3}}", fullmatch=True).filter(
    lambda h: not h.endswith(".sock")
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
socket_paths = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20).map(
    lambda name: f"/tmp/{name}.sock"
)
ports = st.integers(min_value=1, max_value=65535)
tcp_hosts = st.tuples(st.one_of(hostnames, ipv4, ipv6), ports)
unix_hosts = st.tuples(socket_paths, st.just(UNIX_SOCKET_PORT))
host_lists = st.lists(st.one_of(tcp_hosts, unix_hosts), min_size=1, max_size=5)


@given(host_lists)
def test_hosts_round_trip(hosts: List[Tuple[str, int]]) -> None:
    text = ",".join(format_address((host, port)) for host, port in hosts)
    assert split_hosts(text) == tuple(hosts)
    assert parse_uri(f"mongodb://{text}/db").hosts == tuple(hosts)


@given(st.one_of(tcp_hosts, unix_hosts))
def test_one_address_round_trips(address: Tuple[str, int]) -> None:
    assert parse_host(format_address(address)) == address


@given(st.lists(st.tuples(st.one_of(hostnames, ipv4, ipv6), st.booleans()), min_size=1))
def test_omitted_port_takes_default(entries: List[Tuple[str, bool]]) -> None:
    text = ",".join(
        format_address((h, 1))[: -len(":1")] if omit else format_address((h, 1))
        for h, omit in entries
    )
    parsed = split_hosts(text, default_port=999)
    assert parsed == tuple((h, 999 if omit else 1) for h, omit in entries)


credentials = st.text(st.characters(codec="utf-8"), max_size=30)


@given(credentials.filter(bool), credentials)
def test_credentials_round_trip(username: str, password: str) -> None:
    uri = f"mongodb://{quote(username, safe='')}:{quote(password, safe='')}@h/db"
    parsed = parse_uri(uri)
    assert (parsed.username, parsed.password) == (username, password)
    assert parsed.hosts == (("h", 27017),) and parsed.database == "db"


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_garbage_raises_only_configuration_error(tail: str) -> None:
    for uri in (tail, "mongodb://" + tail):
        try:
            parsed = parse_uri(uri)
        except ConfigurationError:
            continue
        assert isinstance(parsed, ParsedURI) and parsed.hosts


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(list("abc:,[]%/.@?&=1290fF")) | st.sampled_from(["::", "%2F", ".sock"]),
        max_size=25,
    )
)
def test_structured_garbage_raises_only_configuration_error(parts: List[str]) -> None:
    text = "".join(parts)
    for call in (lambda: parse_uri("mongodb://" + text), lambda: split_hosts(text)):
        try:
            call()
        except ConfigurationError:
            pass
