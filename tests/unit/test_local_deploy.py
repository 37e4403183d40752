"""local/deploy.py's fixes for what the emulator gets wrong, against fake clients."""

from __future__ import annotations

from typing import Any

from local.deploy import copier_concurrency

OUTPUTS = {"CopierFunctionName": "grokvideo-copier"}


class FakeLambda:
    def __init__(self, reserved: int | None) -> None:
        self.reserved = reserved
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_function_concurrency(self, **kwargs: Any) -> dict[str, Any]:
        return {} if self.reserved is None else {"ReservedConcurrentExecutions": self.reserved}

    def put_function_concurrency(self, **kwargs: Any) -> None:
        self.calls.append(("put_function_concurrency", kwargs))

    def list_event_source_mappings(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs == {"FunctionName": "grokvideo-copier"}
        return {"EventSourceMappings": [{"UUID": "u1", "ScalingConfig": {"MaximumConcurrency": 10}}]}

    def update_event_source_mapping(self, **kwargs: Any) -> None:
        self.calls.append(("update_event_source_mapping", kwargs))


class FakeBoto3:
    def __init__(self, parameter: str, reserved: int | None) -> None:
        self.parameter = parameter
        self.lam = FakeLambda(reserved)

    def client(self, service: str) -> Any:
        if service == "lambda":
            return self.lam
        assert service == "cloudformation"
        params = [{"ParameterKey": "CopierReservedConcurrency", "ParameterValue": self.parameter}]
        return type("Cfn", (), {"describe_stacks": lambda _self, **kw: {"Stacks": [{"Parameters": params}]}})()


def test_the_reserve_and_the_mapping_limit_are_set_as_numbers() -> None:
    fake = FakeBoto3("25", reserved=None)
    assert copier_concurrency(fake, OUTPUTS) == [
        "copier reserved concurrency 25",
        "copy queue mapping MaximumConcurrency 25 as a number",
    ]
    assert fake.lam.calls == [
        ("put_function_concurrency", {"FunctionName": "grokvideo-copier", "ReservedConcurrentExecutions": 25}),
        ("update_event_source_mapping", {"UUID": "u1", "ScalingConfig": {"MaximumConcurrency": 25}}),
    ]


def test_a_reserve_already_in_place_is_left_and_zero_reserves_nothing() -> None:
    fake = FakeBoto3("10", reserved=10)
    assert copier_concurrency(fake, OUTPUTS) == ["copy queue mapping MaximumConcurrency 10 as a number"]
    fake = FakeBoto3("0", reserved=None)
    copier_concurrency(fake, OUTPUTS)
    mapping_only = ("update_event_source_mapping", {"UUID": "u1", "ScalingConfig": {"MaximumConcurrency": 10}})
    assert fake.lam.calls == [mapping_only]
