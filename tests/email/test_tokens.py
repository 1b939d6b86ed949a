import uuid

from channels.email.tokens import MAX_LOCAL_PART, make_token, read_token, reply_address, token_in

SECRET = "a-secret-key-for-the-tests"


def test_a_token_names_its_case_and_binds_its_party() -> None:
    case_id, party_id = uuid.uuid4(), uuid.uuid4()
    token = read_token(SECRET, make_token(SECRET, case_id=case_id, party_id=party_id))
    assert token is not None
    assert token.case_id == case_id
    assert token.binds(party_id)
    assert not token.binds(uuid.uuid4())


def test_the_reply_address_fits_a_local_part_and_survives_upper_case() -> None:
    address = reply_address(SECRET, "reply.hub.test", case_id=uuid.uuid4(), party_id=uuid.uuid4())
    local = address.split("@")[0]
    assert len(local.encode()) <= MAX_LOCAL_PART
    assert local == local.lower() and local.startswith("reply+")
    shouted = address.upper()
    token = token_in(shouted, "reply.hub.test")
    assert token is not None
    assert read_token(SECRET, token) is not None


def test_a_changed_token_or_another_key_reads_as_nothing() -> None:
    token = make_token(SECRET, case_id=uuid.uuid4(), party_id=uuid.uuid4())
    flipped = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert read_token(SECRET, flipped) is None
    assert read_token("another-key", token) is None
    assert read_token(SECRET, token[:-1]) is None
    assert read_token(SECRET, "not a token at all") is None


def test_only_reply_addresses_at_the_inbound_domain_carry_a_token() -> None:
    assert token_in("reply+abc@reply.hub.test", "reply.hub.test") == "abc"
    assert token_in("<Reply+ABC@Reply.Hub.Test>", "reply.hub.test") == "ABC"
    assert token_in("reply+abc@elsewhere.test", "reply.hub.test") is None
    assert token_in("jan@reply.hub.test", "reply.hub.test") is None
