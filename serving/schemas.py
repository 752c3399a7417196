"""Request and response bodies of the API, with the examples /docs shows."""
from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, Literal, NotRequired, Required

import msgspec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    WithJsonSchema,
    with_config,
)
from pydantic_core import core_schema
from typing_extensions import TypedDict

from scoring.data.formats import COMPACT_DATES, UNIX_RANGES, UNIX_TIME
from scoring.data.tables import PLAUSIBLE_YEARS
from scoring.scores import Factor

MAX_FACTORS = 10


def _plausible(value: Any) -> Any:
    """Dates outside these years are taken for mistakes, as in files (Excel serials, 9999-12-31 placeholders)."""
    first, last = PLAUSIBLE_YEARS
    if not first <= value.year <= last:
        raise ValueError(f"expected a date between {first} and {last}")
    return value


def _date_as_text(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """A date or datetime (``source``) as the files' dates are read: text (ISO 8601), Unix time in seconds or
    milliseconds (a number, or its digits as text: HubSpot's API and webhooks write ``"1735689600000"``), or a
    date without separators (``"20250105"``, ``"20250105143000"``). Other numbers and digits are refused:
    pydantic alone would read ``0`` and ``"2025"`` as seconds since 1970, plausible enough to be scored. Checked
    by pydantic-core, not a Python validator but for dates without separators: a request of 1,000 deals has
    3,000 dates, and a Python call each cost it 0.4 ms."""
    text = core_schema.str_schema(pattern=r"[^\d.\s]")  # more than digits
    unix_text = core_schema.str_schema(pattern=UNIX_TIME.pattern, strip_whitespace=True)
    unix = core_schema.union_schema([core_schema.float_schema(ge=low, lt=high, strict=True) for low, high in UNIX_RANGES])
    compact = [core_schema.chain_schema([core_schema.str_schema(pattern=pattern.pattern, strip_whitespace=True),
                                         core_schema.no_info_plain_validator_function(partial(_compact, form))])
               for form, pattern in COMPACT_DATES.items()]
    # left to right: the first form that takes a date (ISO text, the first) costs what text alone did; pydantic's
    # smart mode weighed every form, 3x the time (2,000 ISO dates: 2 -> 6 ms, measured)
    return core_schema.chain_schema([
        core_schema.union_schema([text, unix_text, *compact, core_schema.json_or_python_schema(  # JSON: no datetimes
            json_schema=unix, python_schema=core_schema.union_schema([core_schema.is_instance_schema(source), unix]))],
                                 mode="left_to_right", custom_error_type="date_as_text", custom_error_message=_DATE_FORMS),
        handler(source)])


#: What a date may be written as in a request.
_DATE_FORMS = ("expected a date or date-time as text (ISO 8601, e.g. 2025-10-01, or 20251001) or Unix time in seconds "
               "or milliseconds")


def _compact(form: str, text: str) -> datetime:
    return datetime.strptime(text, form)


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _date_or_blank(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """An optional date (:data:`Timestamp`), or nothing: null, or empty text as a CRM sends an empty field (a
    file's blank cell is missing too). Checked by pydantic-core: "" is kept and read as missing with the dates."""
    return core_schema.union_schema([core_schema.none_schema(), _date_as_text(datetime, handler),
                                     core_schema.literal_schema([""])], mode="left_to_right",
                                    custom_error_type="date_as_text",
                                    custom_error_message=f"{_DATE_FORMS}, empty or null")


#: The largest amount taken: beyond it sums of amounts lose their cents and a forecast's quantiles their meaning.
MAX_AMOUNT = 1e15

#: A deal's datetimes: a zone is converted to naive UTC and the year checked for plausibility on whole
#: columns (``scoring.data.open_deals``); numbers are Unix time, others refused.
Timestamp = Annotated[datetime, GetPydanticSchema(_date_as_text), WithJsonSchema({"type": "string", "format": "date-time"})]
#: An optional datetime: also null or "" (missing; kept as given, read as missing with the dates).
MaybeTimestamp = Annotated[datetime | Literal[""] | None, GetPydanticSchema(_date_or_blank),
                           WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"const": ""},
                                                     {"type": "null"}]})]
Day = Annotated[date, GetPydanticSchema(_date_as_text), AfterValidator(_plausible),
                WithJsonSchema({"type": "string", "format": "date"})]

DEAL_EXAMPLE = {"deal_id": "D-1042", "stage": "Proposal", "amount": 48000, "created_at": "2025-08-04",
                "stage_entered_at": "2025-09-15", "expected_close_date": "2025-11-30",
                "segment": "Mid-Market", "source": "Referral"}


@with_config(ConfigDict(extra="forbid"))
class FieldChangeIn(TypedDict):
    """A change of a tracked field (SPEC 2.2): the rep's close date (``expected_close_date``, ``CloseDate``),
    ``amount``, ``forecast_category``, ``owner`` or any other field, its new value, and when it was set. Stage
    changes (``stage``, ``StageName``, ``dealstage``) tell when a deal sent without ``stage_entered_at`` entered
    its stage."""

    field: Annotated[str, Field(min_length=1, max_length=200)]
    value: Annotated[str, Field(max_length=1000)] | float | None
    changed_at: Timestamp


@with_config(ConfigDict(extra="forbid"))
class ActivityIn(TypedDict):
    """A logged activity (call, email, meeting, ...) and when it happened."""

    occurred_at: Timestamp
    type: NotRequired[Annotated[str, Field(max_length=200)] | None]


#: The fields every kind of deal in a request shares.
DealId = Annotated[str, Field(min_length=1, max_length=200)] | int
StageName = Annotated[str, Field(min_length=1, max_length=200)]
#: (The bounds come before the check for booleans so that pydantic-core applies them, not Python validators.)
Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False), BeforeValidator(_not_a_boolean)]
#: An amount or none: null, or empty text as webhooks and connectors send an empty property (a file's blank cell).
MaybeAmount = Annotated[Amount | None, BeforeValidator(_blank_is_none)]
Activities = Annotated[list[ActivityIn], Field(max_length=10_000)]


# Feature fields are not copied by the schema (``extra="allow"`` would: some 0.8 ms of the 2 ms that validating
# 1,000 deals takes); the routes read them from the deals as sent (``dependencies.SentDeals``), and the library's
# contract checks them, as it checks a file's columns.
@with_config(ConfigDict(extra="ignore", json_schema_extra={"examples": [DEAL_EXAMPLE], "additionalProperties": True}))
class Deal(TypedDict):
    """An open deal as the CRM has it. Feature fields (segment, source, ...) sit beside the named ones;
    fields the model does not know are ignored and listed in the answer's warnings. Dates are ISO 8601 text,
    Unix time (seconds or milliseconds) or compact dates (``20250105``); an optional one may be null or ""
    (missing). The amount is a number from 0 to 1e15, never true or false, or null when the deal has none yet
    (scored, no revenue, as a file's blank amount). A model that learned from field history and activities reads
    them from ``history`` and ``activities`` (values set before ``as_of`` count)."""

    deal_id: DealId
    stage: Annotated[StageName, Field(description="One of the model's open stages.")]
    amount: Annotated[MaybeAmount, Field(description="null (or \"\") when the deal has none yet: scored, no revenue.")]
    created_at: Timestamp
    stage_entered_at: NotRequired[MaybeTimestamp]
    expected_close_date: NotRequired[MaybeTimestamp]
    history: NotRequired[Annotated[list[FieldChangeIn], Field(max_length=10_000)]]
    activities: NotRequired[Activities]


class ScoreRequest(BaseModel):
    """Open deals to score, as known at ``as_of`` (default: today)."""

    as_of: Day | None = Field(None, description="Score as of this date (default now, UTC).")
    deals: list[Deal] = Field(min_length=1)
    period: Literal["month", "quarter"] = Field("quarter", description="The calendar period of the timing fields.")
    top_factors: int = Field(3, ge=0, le=MAX_FACTORS, description="How many factors up and down to list.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"as_of": "2025-10-01",
                                                                               "deals": [DEAL_EXAMPLE]}]})


class ForecastRequest(BaseModel):
    """Open deals and the periods to forecast."""

    as_of: Day | None = Field(None, description="Forecast from this date (default now, UTC).")
    deals: list[Deal] = Field(min_length=1)
    period: Literal["month", "quarter"] = "quarter"
    periods: int = Field(4, ge=1, le=36, description="How many calendar periods, the first running from as_of.")
    booked: float | None = Field(None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False, strict=True,
                                 description="Revenue already won in the first calendar period before as_of, if "
                                             "the CRM knows it (else booked is 0 and said so).")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"as_of": "2025-10-01", "period": "quarter",
                                                                               "periods": 4, "deals": [DEAL_EXAMPLE]}]})


class ModelRef(TypedDict):
    name: str
    version: str


# The answers are TypedDicts (model classes would cost a batch of 1,000 scored deals some 12 ms more to build).
# They document the answers; /v1/score's, written by orjson, is held to ScoreResponse by the tests.
class Timing(TypedDict):
    win_probability_this_period: Annotated[float, Field(description="P(won by the end of the current month or "
                                                                    "quarter).")]
    period_end: date
    slip_probability: Annotated[float, Field(description="P(won, but after the current period): a slip.")]
    loss_probability: Annotated[float, Field(description="P(lost): 1 - win_probability.")]
    win_probability_90d: float
    expected_close_date: Annotated[date, Field(description="When a win would most likely land.")]


class Score(TypedDict):
    deal_id: str
    stage: str
    win_probability: float
    fixed_probability: Annotated[float, Field(description="The fixed stage percentage, for comparison.")]
    expected_revenue: Annotated[float | None, Field(description="null when the deal has no amount.")]
    fixed_expected_revenue: float | None
    stage_probability: Annotated[float, Field(description="P(win) from the stage-transition model alone.")]
    days_in_stage: float
    stale: Annotated[bool, Field(description="Longer in its stage than 90 % of past stays there.")]
    timing: Timing
    factors_up: list[Factor]
    factors_down: list[Factor]


class ScoreResponse(TypedDict):
    model: ModelRef
    as_of: date
    scores: list[Score]
    warnings: list[str]


def _row_struct(typed: type) -> type[msgspec.Struct]:
    """A msgspec struct of the keys of the TypedDict ``typed``, in its order, to write answers by: built and written
    several times faster than dicts, and not tracked by the garbage collector (an answer of 1,000 deals with
    factors holds some 7,000 of them)."""
    return msgspec.defstruct(f"{typed.__name__}Row", list(typed.__annotations__), gc=False)


#: /v1/score's rows as written (``routes/scoring.py``): the same keys as the documented answer, by construction.
FactorRow, TimingRow, ScoreRow = _row_struct(Factor), _row_struct(Timing), _row_struct(Score)


class ProblemDetail(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """Every error: a message naming the offending field, and each problem found."""

    error: str
    message: str
    errors: list[ProblemDetail] = []


class Ready(BaseModel):
    ready: bool
    model: ModelRef | None
    source: str | None = Field(description="registry, file or fallback (the exported bundle, store unreachable).")
    detail: str | None


class ReloadResult(BaseModel):
    changed: bool
    model: ModelRef | None
    detail: str | None



# -- /v1/forecast ---------------------------------------------------------------------------------
Money = Annotated[float, Field(description="Currency units, rounded to cents.")]


class ModelForecast(TypedDict):
    expected: Money
    p10: Money
    p50: Money
    p90: Money


class FixedForecast(TypedDict):
    expected: Money


class FixedTotal(TypedDict):
    expected: Money
    placed_by_stage_timing: Annotated[float, Field(description="Of the fixed total: deals without an expected "
                                                               "close date, spread by the stage's past timing.")]


class Commit(TypedDict):
    expected: Money


class PeriodForecast(TypedDict):
    start: Annotated[date, Field(description="The as-of date for the first period, else the period's first day.")]
    end: date
    calendar_start: Annotated[date, Field(description="The first day of the calendar period (booked counts from it).")]
    model: Annotated[ModelForecast, Field(description="The open deals' wins in the period (the same as pipeline).")]
    fixed: FixedForecast
    booked: Annotated[float, Field(description="Revenue already won in the period before as_of (0 when the deal "
                                               "history is not known).")]
    pipeline: Annotated[ModelForecast, Field(description="What the deals open at as_of win in the period.")]
    new_deals: Annotated[ModelForecast, Field(description="What deals not yet created at as_of win in the period.")]
    bookings: Annotated[ModelForecast, Field(description="booked + pipeline + new_deals, quantiles of the sum.")]
    commit: Annotated[Commit | None, Field(description="booked + the deals in the commit forecast category, when "
                                                       "deals carry forecast_category.")]


class ForecastTotal(TypedDict):
    model: ModelForecast
    fixed: FixedTotal
    booked: float
    pipeline: Annotated[ModelForecast, Field(description="The open deals' wins whenever they land.")]
    new_deals: Annotated[ModelForecast, Field(description="Deals not yet created, won by the last period's end.")]
    bookings: ModelForecast
    commit: Commit | None


class ForecastResponse(TypedDict):
    """The forecast JSON of the SPEC (section 5), with breakdowns, warnings and how the range was computed."""

    as_of: date
    period: Literal["month", "quarter"]
    model: ModelRef
    periods: list[PeriodForecast]
    total: ForecastTotal
    booked_known: Annotated[bool, Field(description="Whether booked was counted from the deal history.")]
    deals: int
    breakdowns: Annotated[dict[str, list[dict[str, Any]]], Field(description="Expected won revenue by stage, "
                                                                              "owner and other fields.")]
    warnings: list[str]
    method: dict[str, Any]


# -- PUT /v1/deals ---------------------------------------------------------------------------------------------------
@with_config(ConfigDict(extra="forbid"))
class StageEntryIn(TypedDict):
    """The deal entered ``stage`` at ``entered_at``."""

    stage: Annotated[str, Field(min_length=1, max_length=200)]
    entered_at: Timestamp


#: A stored deal's status: ``deleted`` takes it out of the pipeline.
Status = Literal["open", "won", "lost", "deleted"]
StoredHistory = Annotated[list[StageEntryIn | FieldChangeIn], Field(max_length=10_000)]


STORED_EXAMPLE = {**DEAL_EXAMPLE, "status": "open",
                  "history": [{"stage": "Lead", "entered_at": "2025-08-04"},
                              {"stage": "Proposal", "entered_at": "2025-09-15"},
                              {"field": "expected_close_date", "value": "2025-11-30", "changed_at": "2025-09-15"}],
                  "activities": [{"occurred_at": "2025-09-20T10:00:00", "type": "meeting"}]}


class _KeptFields(TypedDict, total=False):
    """What a stored deal carries beside its id, stage and creation (all optional)."""

    amount: MaybeAmount
    status: Status
    closed_at: MaybeTimestamp
    stage_entered_at: MaybeTimestamp
    expected_close_date: MaybeTimestamp
    history: StoredHistory
    activities: Activities


@with_config(ConfigDict(extra="allow", json_schema_extra={"examples": [STORED_EXAMPLE]}))
class StoredDeal(_KeptFields):
    """A deal as the CRM has it now, open or closed, with its history (stage entries and field changes) and
    activities (feature fields beside)."""

    deal_id: DealId
    stage: StageName
    created_at: Timestamp


class DealsRequest(BaseModel):
    """A batch of deals to keep in the pipeline store (inserted or updated by ``deal_id``)."""

    deals: list[StoredDeal] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"deals": [STORED_EXAMPLE]}]})


PATCH_EXAMPLE = {"deal_id": "D-1042", "stage": "Negotiation", "amount": 52000}


@with_config(ConfigDict(extra="allow", json_schema_extra={"examples": [PATCH_EXAMPLE]}))
class DealPatch(_KeptFields, total=False):
    """The fields of a deal that changed (the others keep their stored values; null clears one), with
    history and activities to append. A deal not in the store yet needs ``stage`` and ``created_at``."""

    deal_id: Required[DealId]
    stage: StageName
    created_at: Timestamp


class DealsPatch(BaseModel):
    """Changes of deals to keep in the pipeline store (by ``deal_id``; each deal at most once)."""

    deals: list[DealPatch] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"deals": [PATCH_EXAMPLE]}]})


class DealsStored(TypedDict):
    deals_read: int
    deals_new: int
    deals_changed: int
    history_new: Annotated[int, Field(description="Stage entries the store had not seen.")]
    field_changes: Annotated[int, Field(description="Changes of amount, stage, status, dates and other fields kept.")]
    field_history_new: Annotated[int, Field(description="Field changes of the deals' history the store had not seen.")]
    activities_new: Annotated[int, Field(description="Activities the store had not seen.")]
    deals_deleted: Annotated[int, Field(description="Stored deals marked deleted, taken out of the pipeline.")]


# -- /v1/pipeline/flow --------------------------------------------------------------------------------------------------
class FlowPart(TypedDict):
    start_value: Annotated[float, Field(description="Amount of the deals open at `from`.")]
    start_deals: int
    created: float
    created_deals: int
    won: float
    won_deals: int
    lost: float
    lost_deals: int
    removed: Annotated[float, Field(description="Amount of the deals deleted in the CRM (out of the pipeline).")]
    removed_deals: int
    raised: Annotated[float, Field(description="Amounts raised on deals (from the changes imports found).")]
    cut: float
    pushed_out: Annotated[float, Field(description="Amount of deals whose close date moved out of the period.")]
    pushed_out_deals: int
    pulled_in: float
    pulled_in_deals: int
    end_value: Annotated[float, Field(description="Amount of the deals open at `to`.")]
    end_deals: int


class OwnerFlow(FlowPart):
    key: str


class StageFlow(TypedDict):
    key: str
    start_value: float
    start_deals: int
    end_value: float
    end_deals: int


FlowResponse = TypedDict("FlowResponse", {
    "from": date, "to": date,
    "period_end": Annotated[date, Field(description="The end of the period close dates are judged against.")],
    "total": FlowPart, "owner": list[OwnerFlow], "stage": list[StageFlow]})


# -- /v1/model, /v1/stages, /v1/pipeline/kpis -----------------------------------------------------------
class DormantStage(TypedDict):
    never_leave_share: Annotated[float, Field(description="The share of stays in the stage that never end.")]
    longest_exit_days: Annotated[float, Field(description="The longest stay in it that ended; deals in it longer "
                                                          "are served P(win) 0.")]
    expected_exits_after: Annotated[float, Field(description="Exits the stays past that would have shown had they "
                                                             "ended like the late ones.")]


class Dormant(TypedDict):
    found: Annotated[bool, Field(description="Whether the history shows deals left in a stage for good.")]
    stages: Annotated[dict[str, DormantStage], Field(description="The stages that hold them.")]


class Serving(TypedDict):
    model: Annotated[str, Field(description="Which candidate gives the answers: the win model or a baseline.")]
    reason: str
    calibration: str
    blend_weight: Annotated[float, Field(description="The booster's share of the log-odds (the rest: "
                                                     "blend_with's).")]
    blend_with: Annotated[str, Field(description="The model the win model is blended with when blend_weight < 1.")]
    calibration_holdout_log_loss: dict[str, float]
    dormancy: Annotated[Dormant, Field(description="Deals that never close: served P(win) is the candidate's P(win) "
                                                   "times the chance a deal leaves its stage at all.")]


class TrainingData(TypedDict):
    deals: int
    as_of: date
    digest: str
    holdout_start: date
    features: dict[str, str]
    stages: list[str]


class HoldoutMetrics(TypedDict):
    model: str
    log_loss: float | None
    brier: float | None
    roc_auc: float | None
    ece: float | None
    n: int
    win_rate: float | None
    revenue_ratio: Annotated[float | None, Field(description="Expected won amount / won amount on the holdout "
                                                             "(calibration in revenue terms; 1 is right).")]


class ModelCard(TypedDict):
    name: str
    version: str
    source: Literal["registry", "file", "fallback"]
    loaded_at: str
    detail: str | None
    serving: Serving
    trained_at: str
    data: TrainingData
    holdout_metrics: list[HoldoutMetrics]
    calibration_error: float | None
    libraries: dict[str, str]


class StageRow(TypedDict):
    stage: str
    fixed_probability: float
    learned_probability: float
    p_win_after_30d: float | None
    p_win_after_90d: float | None
    p_win_after_180d: float | None
    days_p25: float | None
    days_p50: float | None
    days_p75: float | None
    days_p90: float | None
    exits: int
    still_in_stage: int
    never_leave_share: Annotated[float, Field(description="The share of stays in the stage that never end (deals left "
                                                          "there for good); learned_probability is of those that leave.")]


class StagesResponse(TypedDict):
    model: ModelRef
    stages: list[StageRow]


class ConversionRow(TypedDict):
    stage: str
    to: str
    decided: int
    converted: int
    rate: float | None
    median_days: float | None


class StaleDealRow(TypedDict):
    deal_id: str
    stage: str
    days_in_stage: float
    normal_days: float | None


class KpisResponse(TypedDict):
    model: ModelRef
    as_of: str
    window_days: int
    conversion: list[ConversionRow]
    won: int
    lost: int
    win_rate: float | None
    sales_cycle_median_days: float | None
    sales_cycle_mean_days: float | None
    average_deal_size: float | None
    new_qualified_by_month: dict[str, int]
    lead_velocity_rate: float | None
    open_deals: int
    stale_count: int
    stale_by_stage: dict[str, int]
    stale: list[StaleDealRow]
    bottleneck: str | None
