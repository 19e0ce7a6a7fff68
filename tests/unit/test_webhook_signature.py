"""Our signature header against the test vector that the Standard Webhooks repository publishes
(libraries/*/ tests, `TestWebhookSign`), and against the library's own verifier."""

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook as Verifier

from runner.webhooks.sender import signature_header
from sessions.webhooks.services import secret_new

# github.com/standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (and the C#, Java tests alike).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector():
    at = datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC)
    assert signature_header(VECTOR_ID, at, VECTOR_BODY, [VECTOR_SECRET]) == VECTOR_SIGNATURE


def test_two_secrets_give_two_space_separated_signatures_each_verifying():
    first, second = secret_new(), secret_new()
    now = datetime.now(UTC).replace(microsecond=0)
    header = signature_header("msg_1", now, VECTOR_BODY, [first, second])
    assert len(header.split(" ")) == 2 and all(part.startswith("v1,") for part in header.split(" "))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": header}
    for secret in (first, second):
        assert Verifier(secret).verify(VECTOR_BODY, headers) == {"test": 2432232314}


def test_new_secrets_are_prefixed_base64_of_24_random_bytes():
    secrets = {secret_new() for _ in range(20)}
    assert len(secrets) == 20 and all(s.startswith("whsec_") and len(s) == 6 + 32 for s in secrets)
