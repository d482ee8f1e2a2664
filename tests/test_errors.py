from wireclient import errors


def test_every_error_is_a_wireclient_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.WireClientError), name


def test_protocol_error_reports_offset_and_side() -> None:
    err = errors.ProtocolError("bad section kind 7", offset=21)
    assert "offset 21" in str(err)
    assert err.offset == 21 and err.side == "remote"


def test_operation_failure_keeps_code_and_details() -> None:
    err = errors.DuplicateKeyError("dup", code=11000, details={"ok": 0, "code": 11000})
    assert isinstance(err, errors.OperationFailure)
    assert err.code == 11000 and err.details["code"] == 11000


def test_the_suites_chain_check_finds_a_cycle_and_only_a_cycle() -> None:
    """support/exception_chains.py, which conftest applies to every pytest.raises."""
    from exception_chains import cycle_in_chain

    own = errors.AuthenticationError("bad password")
    own.__cause__ = own  # what `raise exc from exc` makes
    assert cycle_in_chain(own) == [own, own]
    inner = OSError("reset")
    outer = errors.AutoReconnect("h:1: reset")
    outer.__cause__ = outer.__context__ = inner  # `raise X from exc` inside `except exc`
    assert cycle_in_chain(outer) is None
    a, b = errors.ProtocolError("a"), errors.ProtocolError("b")
    a.__context__, b.__context__ = b, a
    assert cycle_in_chain(a) == [a, b, a]
