"""The SAM templates: cfn-lint, aws-sam-translator, and a stack in moto's CloudFormation (server mode).

`package` does what ``sam package`` does (upload local artifacts to S3 and
point the template at them); `translate` is ``sam deploy``'s transform. The
moto server runs on 127.0.0.1 in this process.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse
from support import clouds
from support.layer import core_layer

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ["template.yaml", "template-zero-code.yaml"]
REGION = "us-east-1"
BUCKET = "nexs-artifacts"
RUNTIMES = ["python3.10", "python3.11", "python3.12", "python3.13"]


def load(name: str) -> dict[str, Any]:
    """A template as a dict, with CloudFormation's short-form tags understood."""
    template: dict[str, Any] = yaml_parse((ROOT / name).read_text())
    return template


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical id."""
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it on deploy."""
    translator = Translator({}, Parser(), boto_session=Session(region_name=REGION))
    result: dict[str, Any] = translator.translate(copy.deepcopy(template), parameter_values={})
    return result


def zip_folder(folder: Path) -> bytes:
    """A function's code folder as a zip (what sam package uploads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def package(template: dict[str, Any], s3: Any, layer_zip: bytes) -> dict[str, Any]:
    """Upload the layer zip and each function's CodeUri folder; point the template at S3."""
    packaged = copy.deepcopy(template)
    for name, layer in of_type(packaged, "AWS::Serverless::LayerVersion").items():
        assert layer["Properties"]["ContentUri"] == "dist/nexs-serverless-layer.zip"
        s3.put_object(Bucket=BUCKET, Key=f"{name}.zip", Body=layer_zip)
        layer["Properties"]["ContentUri"] = f"s3://{BUCKET}/{name}.zip"
    for name, function in of_type(packaged, "AWS::Serverless::Function").items():
        folder = ROOT / function["Properties"]["CodeUri"]
        s3.put_object(Bucket=BUCKET, Key=f"{name}.zip", Body=zip_folder(folder))
        function["Properties"]["CodeUri"] = f"s3://{BUCKET}/{name}.zip"
    return packaged


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The core layer zip, as `build_layer.py --sam` writes it."""
    return core_layer(tmp_path_factory).read_bytes()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this module.

    moto's CloudFormation drops ``Layers`` when it creates an ``AWS::Lambda::Function``
    and gives ``AWS::Lambda::LayerVersion`` no physical id (so ``Ref`` yields no ARN);
    both gaps of the fake are filled here, so the wiring is checked end to end.
    """
    from moto.awslambda import models

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            models.LayerVersion, "physical_resource_id", property(lambda self: self.arn), raising=False
        )
        create_function = models.LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

        def create_with_layers(
            cls: Any, name: str, cloudformation_json: dict[str, Any], *args: Any, **kw: Any
        ) -> Any:
            function = create_function(cls, name, cloudformation_json, *args, **kw)
            function.layers = function._get_layers_data(cloudformation_json["Properties"].get("Layers", []))
            return function

        patch.setattr(
            models.LambdaFunction, "create_from_cloudformation_json", classmethod(create_with_layers)
        )
        with clouds.moto_server() as url:
            yield url


@pytest.fixture
def aws(moto_server: str) -> dict[str, Any]:
    """boto3 client settings for the moto server, whose account starts empty for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()
    return {
        "endpoint_url": moto_server,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def test_cfn_lint_passes_on_both_templates() -> None:
    """cfn-lint reports nothing on the main and the zero-code template."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), *TEMPLATES], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_functions_point_at_example_code_that_exists() -> None:
    """Every function's CodeUri holds the module and function its Handler names."""
    for name in TEMPLATES:
        for function in of_type(load(name), "AWS::Serverless::Function").values():
            properties = function["Properties"]
            module, _, attribute = properties["Handler"].rpartition(".")
            source = ROOT / properties["CodeUri"] / (module.replace(".", "/") + ".py")
            assert f"def {attribute}(" in source.read_text()


def test_main_template_deploys_the_lambda_examples_with_the_layer() -> None:
    """template.yaml holds examples/hello and examples/error-handling, configured for the exporter."""
    functions = of_type(load("template.yaml"), "AWS::Serverless::Function")
    assert {f["Properties"]["CodeUri"] for f in functions.values()} == {
        "examples/hello/",
        "examples/error-handling/",
    }
    environment = load("template.yaml")["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["OTEL_TRACES_EXPORTER"] == {"Ref": "TracesExporter"}
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == {"Ref": "OtlpEndpoint"}
    assert environment["OTEL_TRACES_SAMPLER"] == {"Ref": "Sampler"}
    assert environment["OTEL_SERVICE_NAME"] == {"Ref": "ServiceName"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_sam_translator_transforms_the_template(name: str) -> None:
    """The transform gives a layer version for 3.10-3.13 on both architectures and traced functions on it."""
    template = load(name)
    for function in of_type(template, "AWS::Serverless::Function").values():
        function["Properties"]["CodeUri"] = f"s3://{BUCKET}/code.zip"
    for layer in of_type(template, "AWS::Serverless::LayerVersion").values():
        layer["Properties"]["ContentUri"] = f"s3://{BUCKET}/layer.zip"
    transformed = translate(template)
    ((layer_id, layer),) = of_type(transformed, "AWS::Lambda::LayerVersion").items()
    assert layer["Properties"]["CompatibleRuntimes"] == RUNTIMES
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64", "arm64"]
    functions = of_type(transformed, "AWS::Lambda::Function")
    assert functions
    for logical_id, function in functions.items():
        properties = function["Properties"]
        assert properties["Layers"] == [{"Ref": layer_id}]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        role = transformed["Resources"][f"{logical_id}Role"]["Properties"]
        actions = {
            action
            for policy in role.get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
            for action in statement["Action"]
        }
        assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= actions
    assert transformed["Outputs"]["LayerVersionArn"]["Value"] == {"Ref": layer_id}


@pytest.mark.parametrize("name", TEMPLATES)
def test_stack_creates_in_moto_with_the_layer_attached(
    name: str, aws: dict[str, Any], layer_zip: bytes
) -> None:
    """The transformed stack creates; the layer version holds our zip and every function uses its ARN."""
    s3 = boto3.client("s3", **aws)
    s3.create_bucket(Bucket=BUCKET)
    transformed = translate(package(load(name), s3, layer_zip))
    cloudformation = boto3.client("cloudformation", **aws)
    cloudformation.create_stack(
        StackName="nexs",
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": "ServiceName", "ParameterValue": "orders"}],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="nexs")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    lam = boto3.client("lambda", **aws)
    (layer,) = lam.list_layers()["Layers"]
    (version,) = lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]
    assert version["CompatibleRuntimes"] == RUNTIMES
    detail = lam.get_layer_version(LayerName=layer["LayerName"], VersionNumber=version["Version"])
    assert detail["Content"]["CodeSize"] == len(layer_zip)
    assert detail["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(layer_zip).digest()).decode()
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["LayerVersionArn"] == version["LayerVersionArn"]
    functions = lam.list_functions()["Functions"]
    assert functions
    for function in functions:
        configuration = lam.get_function(FunctionName=function["FunctionName"])["Configuration"]
        assert [entry["Arn"] for entry in configuration["Layers"]] == [version["LayerVersionArn"]]
        assert configuration["Environment"]["Variables"]["OTEL_SERVICE_NAME"] == "orders"


def test_zero_code_template_sets_the_exec_wrapper(aws: dict[str, Any], layer_zip: bytes) -> None:
    """The zero-code function starts through /opt/nexs-handler and keeps its own handler name."""
    s3 = boto3.client("s3", **aws)
    s3.create_bucket(Bucket=BUCKET)
    transformed = translate(package(load("template-zero-code.yaml"), s3, layer_zip))
    cloudformation = boto3.client("cloudformation", **aws)
    cloudformation.create_stack(
        StackName="zero", TemplateBody=json.dumps(transformed), Capabilities=["CAPABILITY_IAM"]
    )
    (function,) = boto3.client("lambda", **aws).list_functions()["Functions"]
    assert function["Handler"] == "app.handler"
    assert function["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/nexs-handler"


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_default_exporter_works_as_deployed(name: str) -> None:
    """Accepting the defaults (``sam deploy --guided``) must give traces: X-Ray, whose daemon
    ``Tracing: Active`` runs, not OTLP to a localhost collector a plain deploy does not have."""
    assert load(name)["Parameters"]["TracesExporter"]["Default"] == "xray"
