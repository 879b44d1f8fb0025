"""Where the AWS proxy sends each host name."""

from __future__ import annotations

import pytest

from warmline.dev.proxy.routing import SERVED_NAMES, RouteKind, Router, region_of, service_of


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("dynamodb.us-east-1.amazonaws.com", "dynamodb"),
        ("DynamoDB.us-east-1.amazonaws.com.", "dynamodb"),
        ("dynamodb.fips.us-gov-west-1.amazonaws.com", "dynamodb"),
        ("sqs.eu-west-1.amazonaws.com", "sqs"),
        ("eu-west-1.queue.amazonaws.com", "sqs"),
        ("s3.amazonaws.com", "s3"),
        ("my-bucket.s3.amazonaws.com", "s3"),
        ("my-bucket.s3.us-east-1.amazonaws.com", "s3"),
        ("s3.dualstack.us-east-1.amazonaws.com", "s3"),
        ("sts.amazonaws.com", "sts"),
        ("abc123defg.execute-api.us-east-1.amazonaws.com", "execute-api"),
        ("lambda.ap-southeast-2.amazonaws.com", "lambda"),
        ("bedrock-runtime.us-west-2.amazonaws.com", "bedrock-runtime"),
        ("api.openai.com", ""),
        ("amazonaws.com.evil.example", ""),
    ],
)
def test_service_of_reads_the_service_from_the_host_name(host: str, service: str) -> None:
    assert service_of(host) == service


def test_region_of_is_none_for_global_hosts() -> None:
    assert region_of("sts.amazonaws.com") is None
    assert region_of("s3.amazonaws.com") is None
    assert region_of("x.execute-api.eu-west-1.amazonaws.com") == "eu-west-1"
    assert region_of("us-west-2.queue.amazonaws.com") == "us-west-2"


ROUTER = Router(api_id="warmline00", region="us-east-1", services=SERVED_NAMES)


def test_the_emulated_api_and_lambda_go_to_the_emulator() -> None:
    assert ROUTER.route("warmline00.execute-api.us-east-1.amazonaws.com").kind is RouteKind.EMULATOR
    assert ROUTER.route("lambda.us-east-1.amazonaws.com").kind is RouteKind.EMULATOR


def test_served_services_go_to_moto_in_the_emulated_region_only() -> None:
    for host in ("dynamodb.us-east-1.amazonaws.com", "bkt.s3.amazonaws.com", "sts.amazonaws.com"):
        assert ROUTER.route(host).kind is RouteKind.SERVICES, host
    other = ROUTER.route("dynamodb.eu-west-1.amazonaws.com")
    assert other.kind is RouteKind.REFUSE
    assert "is in eu-west-1; this run emulates us-east-1 only" in other.reason


def test_another_api_id_or_region_is_refused_naming_the_served_api() -> None:
    for host in (
        "abc123defg.execute-api.us-east-1.amazonaws.com",
        "warmline00.execute-api.eu-west-1.amazonaws.com",
    ):
        route = ROUTER.route(host)
        assert route.kind is RouteKind.REFUSE
        assert "serves warmline00.execute-api.us-east-1.amazonaws.com" in route.reason


def test_the_execute_api_host_without_an_api_id_is_refused_saying_why() -> None:
    # boto3's apigatewaymanagementapi without endpoint_url resolves this host
    route = ROUTER.route("execute-api.us-east-1.amazonaws.com")
    assert route.kind is RouteKind.REFUSE
    assert "names no API" in route.reason and "{domainName}/{stage}" in route.reason


def test_services_without_a_local_server_are_refused_saying_why() -> None:
    router = Router(api_id="warmline00", region="us-east-1")
    route = router.route("dynamodb.us-east-1.amazonaws.com")
    assert route.kind is RouteKind.REFUSE
    assert route.reason.startswith("DynamoDB is not running: the stack declares no DynamoDB")


def test_unemulated_aws_hosts_are_refused_or_passed_through_on_request() -> None:
    refused = ROUTER.route("bedrock-runtime.us-east-1.amazonaws.com")
    assert refused.kind is RouteKind.REFUSE and refused.service == "bedrock-runtime"
    assert refused.reason.endswith(
        "`warmline dev --aws-profile NAME` (or --aws-passthrough, with your default "
        "credentials) sends such calls to AWS"
    )
    passing = Router(api_id="warmline00", region="us-east-1", aws_passthrough=True)
    # Terminated and re-signed with the developer's keys (never relayed with the local ones).
    assert passing.route("bedrock-runtime.us-east-1.amazonaws.com").kind is RouteKind.AWS


def test_other_hosts_are_tunnelled_unchanged() -> None:
    assert ROUTER.route("api.openai.com").kind is RouteKind.TUNNEL
    assert ROUTER.route("127.0.0.1").kind is RouteKind.TUNNEL
