"""The edge: per-client rate limits in a bounded table, and CORS off unless configured."""

import pytest

from orchestrator.ratelimit import RateLimiter
from tests.orchestrator._web import make_settings, start_web


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token every half second
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock.now = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now = 100.0
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # never above the burst
    assert limiter.take("a") > 0


def test_the_table_stays_bounded_whoever_comes():
    clock = Clock()
    limiter = RateLimiter(1.0, 5, max_clients=100, clock=clock)
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
        clock.now += 0.001
    assert len(limiter) <= 100
    limiter.take("busy")
    for _ in range(4):
        limiter.take("busy")
    clock.now += 10.0  # everyone has refilled but ...
    limiter.take("busy")  # ... the busy one spends again
    assert limiter.prune() >= 1
    assert len(limiter) == 1  # only a bucket that is not full says anything


async def test_a_client_past_its_rate_gets_429_with_retry_after(nursery, running_kernel, data_dir):
    app, _ = await start_web(
        nursery, running_kernel, make_settings(data_dir, rate_limit=0.5, rate_burst=3)
    )
    async with app.test_app() as test_app:
        client = test_app.test_client()
        statuses = [(await client.get("/")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = await client.get("/")
        assert response.headers["Retry-After"] == "2"
        assert (await response.get_json())["error"]["code"] == "rate_limited"
        assert (await client.get("/health")).status_code == 200  # probes are not limited


async def test_cors_is_off_by_default(web):
    response = await web.client.get("/", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_answers_only_the_configured_origins(nursery, running_kernel, data_dir):
    allowed = "https://desk.example"
    settings = make_settings(data_dir, cors_origins=[allowed])
    app, _ = await start_web(nursery, running_kernel, settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        preflight = await client.options(
            "/kernel/info",
            headers={"Origin": allowed, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "Authorization"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == allowed
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        other = await client.get("/", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
