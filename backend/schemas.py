"""Request and response schemas of the public API (shown at /docs). Values that depend on a model's spec (code
names, category counts, ranges, the noise dim) are checked per request against that spec (spec/latent.py's
``check`` methods); the bounds and texts here come from that module's constants."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from spec.latent import EXTRAPOLATION, SLIDER_SPAN, SLIDER_STEPS
from spec.manifest import Polarity


def _json_number(value: Any) -> Any:
    # pydantic's lax mode reads JSON true/false as 1/0 and "5" as 5; a count, a seed, a bound or a noise value sent
    # as a boolean or a string is a client's mistake, refused as the codes' values are (spec/latent.py)
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not a boolean")
    if isinstance(value, str):
        raise PydanticCustomError("number_type", "Input should be a number, not a string")
    return value


Int = Annotated[int, BeforeValidator(_json_number)]
Number = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_json_number)]
ModelId = Annotated[str, Field(min_length=1, max_length=128, description="a model id from GET /models")]
# at most 2**53 - 1 so JavaScript numbers hold every seed exactly
Seed = Annotated[
    int,
    Field(ge=0, le=2**53 - 1, description="seed of the prior draw; returned so a result can be repeated"),
    BeforeValidator(_json_number),
]
# checked against the model's spec by spec/latent.py (bools and strings are refused there, by field name)
CodeValue = Annotated[Any, WithJsonSchema({"type": "number"})]
CodeValues = Annotated[
    dict[str, CodeValue],
    Field(
        max_length=64,
        description=f"fixed code values by name: a categorical code takes an integer index 0..K-1; a continuous code "
        f"a number within {EXTRAPOLATION:g}x its prior's half-range around the centre "
        f"([{-EXTRAPOLATION:g}, {EXTRAPOLATION:g}] for [-1, 1])",
    ),
]


class Error(BaseModel):
    detail: str = Field(description="what is wrong, naming the field")


class Image(BaseModel):
    height: int
    width: int
    channels: int


class NoiseInfo(BaseModel):
    dim: int
    distribution: Literal["uniform", "normal"]


class ChoiceControl(BaseModel):
    """The page's control of a categorical code: one button per category."""

    widget: Literal["choice"]
    choices: list[str] = Field(description="the button labels, one per category")
    default: int


class RangeControl(BaseModel):
    """The page's control of a continuous code: a slider over min..max, a typed field up to hard_min..hard_max."""

    widget: Literal["range"]
    min: float = Field(description=f"slider start: {SLIDER_SPAN:g} half-ranges below the prior's centre")
    max: float = Field(description=f"slider end: {SLIDER_SPAN:g} half-ranges above the prior's centre")
    hard_min: float = Field(description=f"the least a request may set ({EXTRAPOLATION:g} half-ranges below)")
    hard_max: float = Field(description=f"the most a request may set ({EXTRAPOLATION:g} half-ranges above)")
    prior: list[float] = Field(min_length=2, max_length=2, description="the training prior [low, high]")
    step: float = Field(description=f"one arrow-key step: 1/{SLIDER_STEPS} of the slider's span")
    default: float


class CategoricalCode(BaseModel):
    name: str
    type: Literal["categorical"]
    categories: int = Field(description="K; values are indices 0..K-1")
    labels: list[str] = Field(description="a label per category ('0'..'K-1' when the model has none)")
    control: ChoiceControl
    caption: str = Field(description="one line describing the code, for the page")

    @model_validator(mode="before")
    @classmethod
    def _default_labels(cls, data: Any) -> Any:
        # a spec without labels (its JSON omits them): the indices, as the page shows them
        if isinstance(data, dict) and data.get("labels") is None and isinstance(data.get("categories"), int):
            data = {**data, "labels": [str(k) for k in range(data["categories"])]}
        return data


class ContinuousCode(BaseModel):
    name: str
    type: Literal["continuous"]
    low: float = Field(description="the training prior's lower end")
    high: float = Field(description="the training prior's upper end")
    label: str | None = Field(None, description="what the code was found to control, if known")
    control: RangeControl
    caption: str = Field(description="one line describing the code, for the page")


Code = Annotated[CategoricalCode | ContinuousCode, Field(discriminator="type")]


class ModelInfo(BaseModel):
    id: str
    title: str
    dataset: str
    image: Image
    noise: NoiseInfo
    codes: list[Code]
    metrics: dict[str, Any] = Field(description="evaluation figures from training/evaluate.py (free-form)")
    device: Literal["cpu", "cuda"]
    compare_with: str | None = Field(description="id of the served model to show beside this one (none: null)")
    drawing: Polarity = Field(description="how a drawing of the data set looks (the page's canvas paints so)")


class ModelList(BaseModel):
    models: list[ModelInfo]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelId | None = Field(None, description="default: the first model")
    n: Int = Field(1, ge=1, le=256, description="number of images")
    seed: Seed | None = None
    z: list[list[Number]] | None = Field(
        None, max_length=256, description="noise, n rows of the model's noise dim (default: drawn from the prior)"
    )
    codes: CodeValues = Field(default_factory=dict)


class GenerateResponse(BaseModel):
    model: str
    seed: int
    images: list[str] = Field(description="base64 PNGs (no data: prefix), one per image")
    z: list[list[float]]
    codes: list[dict[str, int | float]] = Field(description="every code's value, per image")


# the page's slider ends: SLIDER_SPAN half-ranges of the code's prior either side of its centre
_BELOW, _ABOVE = "half-ranges below the prior's centre", "half-ranges above the prior's centre"


class TraverseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelId | None = None
    code: str = Field(min_length=1, max_length=128, description="the code swept along the columns")
    rows: Int = Field(5, ge=1, le=16, description="samples: different noise and other codes")
    cols: Int = Field(7, ge=2, le=16, description="values of the swept code; ignored for a categorical code (all K)")
    low: Number | None = Field(
        None,
        description=f"first column's value (default: the slider's end, {SLIDER_SPAN:g} half-ranges below the centre)",
    )
    high: Number | None = Field(
        None,
        description=f"last column's value (default: the slider's end, {SLIDER_SPAN:g} half-ranges above the centre)",
    )
    seed: Seed | None = None
    codes: CodeValues = Field(default_factory=dict)


class TraverseResponse(BaseModel):
    model: str
    code: str
    rows: int
    cols: int
    values: list[int | float] = Field(description="the swept code's value per column")
    images: list[str] = Field(description="rows x cols base64 PNGs, row-major")
    seed: int


class CategoricalInference(BaseModel):
    type: Literal["categorical"]
    probabilities: list[float]
    value: int = Field(description="the most probable category")


class ContinuousInference(BaseModel):
    type: Literal["continuous"]
    mean: float
    std: float
    value: float = Field(description="the mean, clipped to the code's allowed range")


class InferRequest(BaseModel):
    """JSON form of /infer-codes (the page's drawing canvas)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="data:image/png;base64,... (or bare base64)")
    model: ModelId | None = None


class InferResponse(BaseModel):
    model: str
    codes: dict[str, Annotated[CategoricalInference | ContinuousInference, Field(discriminator="type")]]
    reconstruction: str = Field(description="base64 PNG: G at the inferred codes with the noise at its centre")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    provider: str = Field(description="the ONNX Runtime execution provider in use")
    device: Literal["cpu", "cuda"]
    models: list[str]
    errors: dict[str, str] = Field(description="model folders that could not be served, by folder name")
