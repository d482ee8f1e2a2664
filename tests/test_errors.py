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
