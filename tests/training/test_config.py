"""training/config.py: types, ranges and choices checked at load time, the renamed and the removed settings."""

import re
from pathlib import Path

import pytest

from training.config import Config, load_config


def test_unknown_configs_and_keys_fail_naming_them():
    with pytest.raises(FileNotFoundError, match="no config"):
        load_config("no-such-config")
    with pytest.raises(ValueError, match="unknown keys in \\[optim\\]"):
        load_config("mnist", ["optim.lr=1"])
    with pytest.raises(ValueError, match="unknown config keys \\['trian'\\]"):
        load_config("mnist", ["trian.epochs=1"])


@pytest.mark.parametrize(
    "override, words",
    [
        # values of the wrong type fail at load time, naming the setting (not as a TypeError inside the run)
        ("train.epochs=ten", "train.epochs must be a finite number, got 'ten'"),
        # inf passed every range test (inf > 0) and failed after the data loaded with an OverflowError
        ("train.epochs=inf", "train.epochs must be a finite number, got inf"),
        ("optim.lr_g=inf", "optim.lr_g must be a finite number, got inf"),
        ("model.noise_scale=-inf", "model.noise_scale must be a finite number, got -inf"),
        ("train.epochs=1e300", "train.epochs (--epochs) must be > 0 and at most 1,000,000"),
        # a date (TOML reads 2024-01-01 as one) failed as "not JSON serializable" when the config was printed
        ("name=2024-01-01", "name must be a string, got datetime.date(2024, 1, 1)"),
        ("name=nan", "name must be a string, got nan"),
        ("train.seed=1.5", "train.seed must be an integer"),
        ("train.eval_every_epoch=1", "train.eval_every_epoch must be true or false"),
        ("train.restarts=true", "train.restarts must be an integer"),
        ("model.widths={ fc = 'wide' }", "model.widths must be a table"),
        ("optim=3", "[optim] must be a table"),
        # and values out of range, which crashed (batch 0: ZeroDivisionError) or trained nothing
        ("train.epochs=-1", "train.epochs (--epochs) must be > 0 and at most 1,000,000, got -1"),
        # a negative seed named the run folder "s-1"; one past 64 bits failed as "Overflow when unpacking long long"
        ("train.seed=-1", "train.seed (--seed) must be a whole number in 0..4294967295, got -1"),
        ("train.seed=4294967296", "train.seed (--seed) must be a whole number in 0..4294967295, got 4294967296"),
        ("train.seed=99999999999999999999", "train.seed (--seed) must be a whole number in 0..4294967295"),
        ("optim.batch_size=0", "optim.batch_size must be >= 1"),
        ("optim.beta1=1.0", "optim.beta1 must be in [0, 1)"),
        ("data.channels=2", "data.channels must be 1 (grey) or 3"),
        ("data.resolution=1000000", "data.resolution must be 8..1024 (pixels), got 1000000"),  # 931 GiB asked for
        ("train.threads=-1", "train.threads (--threads) must be >= 0"),
        ("train.restarts=0", "train.restarts must be >= 1 (1: no restarts), got 0"),
        ("train.restart_steps=0", "train.restart_steps must be >= 1"),
        ("train.precision='fp8'", "train.precision must be auto, fp32 or bf16, got 'fp8'"),
        ("train.device='tpu'", "train.device must be auto, cpu or cuda, got 'tpu'"),
        # values that passed the types and failed later: a TypeError or a negative dimension once the data had
        # loaded, a metrics row's TypeError hours into a run
        ("model.widths={foo = 1}", "unknown keys in model.widths for arch 'mnist': ['foo']; expected ['ch', 'fc']"),
        ("model.widths={fc = -5}", "model.widths.fc must be >= 1, got -5"),
        ("model.widths={ch = 0}", "model.widths.ch must be >= 1, got 0"),
        ("model.arch='unet'", "model.arch must be one of ['dcgan', 'dsprites', 'mnist'], got 'unet'"),
        ("train.metrics_sizes={progress = 1}", "unknown keys in train.metrics_sizes: ['progress']"),
        ("train.metrics_sizes={bins = 0}", "train.metrics_sizes.bins must be >= 1, got 0"),
        ("train.metrics_sizes={fvae_train = -1}", "train.metrics_sizes.fvae_train must be >= 1, got -1"),
        ("train.epochs.x=1", "override 'train.epochs.x': train.epochs is a value, not a table of settings"),
        # a misspelt latent part was ignored; a name with a separator or a newline named a run folder
        ("latent.code=1", "latent spec: unknown keys ['code']; expected 'noise' and 'codes'"),
        ('name="a/b"', "name must be 1-64 letters, digits, '_', '.' or '-', got 'a/b'"),
        ('name="two\nlines"', "name must be 1-64 letters"),
    ],
)
def test_bad_values_fail_naming_the_setting(override, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        load_config("mnist", [override])


def test_good_values_load():
    cfg = load_config("mnist", ["train.epochs=3", "optim.lr_q=0.001"])
    assert cfg.train.epochs == 3 and cfg.optim.lr_q == 0.001  # an integer is a number
    assert load_config("mnist").train.restarts == 2 and load_config("mnist").train.restart_steps == 936


def test_the_old_restart_keys_still_work_with_a_note(capsys):
    """train.candidates / train.candidate_steps (the names before "restarts"), in --set and in a file's or an old
    checkpoint's table: read as the new keys; --set of an old name overrides the file's new one, as it used to."""
    cfg = load_config("mnist", ["train.candidates=1", "train.candidate_steps=7"])
    assert (cfg.train.restarts, cfg.train.restart_steps) == (1, 7)
    assert "train.candidates is now called train.restarts" in capsys.readouterr().err
    old = Config().to_dict()
    old["train"] = {k: v for k, v in old["train"].items() if k not in ("restarts", "restart_steps")}
    old["train"].update(candidates=3, candidate_steps=5)
    cfg = Config.from_dict(old)
    assert (cfg.train.restarts, cfg.train.restart_steps) == (3, 5)
    assert "candidates" not in cfg.to_dict()["train"]  # saved under the new names from now on
    with pytest.raises(ValueError, match="the same setting"):
        Config.from_dict({"train": {"candidates": 2, "restarts": 2}})
    with pytest.raises(ValueError, match=re.escape("train.restarts must be >= 1")):
        load_config("mnist", ["train.candidates=0"])  # checked like the new key


def test_removed_settings_are_ignored_so_old_configs_and_checkpoints_load(capsys):
    """train.compile and train.channels_last were removed (README: measured no use); an old checkpoint's config has
    them (false) and must load silently; one that set them loads with a note saying they are ignored."""
    old = Config().to_dict()
    old["train"].update(compile=False, channels_last=False)
    cfg = Config.from_dict(old)
    assert not hasattr(cfg.train, "compile") and not hasattr(cfg.train, "channels_last")
    assert capsys.readouterr().err == ""
    load_config("mnist", ["train.compile=true", "train.channels_last=true"])
    err = capsys.readouterr().err
    assert "train.compile = true is ignored" in err and "train.channels_last = true is ignored" in err


def test_restarts_need_a_categorical_code():
    with pytest.raises(ValueError, match="no categorical code"):
        load_config("mnist", ['latent.codes=[{ name = "c1", type = "continuous" }]', "train.restarts=2"])
    assert load_config("mnist", ['latent.codes=[{ name = "c1", type = "continuous" }]', "train.restarts=1"])


@pytest.mark.parametrize(
    "override, words",
    [
        ("loss.cr_weight=-1", "loss.cr_weight must be >= 0"),
        ("loss.cr_late_from=-5", "loss.cr_late_from must be >= 0 (images)"),
        ("optim.g_steps=0", "optim.g_steps must be >= 1"),
        ("optim.lr_cr=0", "optim.lr_cr must be > 0"),
        ("train.metrics_every=-1", "train.metrics_every must be >= 0"),
        ("train.ema_half_life=-1", "train.ema_half_life must be >= 0"),
        ("loss.lambda_real=-0.5", "loss.lambda_real must be >= 0"),
        ("loss.lambda_real_pair=-1", "loss.lambda_real_pair must be >= 0"),
        ("loss.lambda_real_pair=1", "loss.lambda_real_pair needs loss.invariance"),
        ("train.metrics_sizes={ fvae_votes = 10 }", "unknown keys in train.metrics_sizes: ['fvae_votes']"),
    ],
)
def test_cr_and_metric_settings_are_checked(override, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        load_config("dsprites", [override])


def test_dsprites_configs_differ_only_in_the_regularizer():
    """`dsprites` and `dsprites-infogan` share InfoGAN-CR's networks, codes, rates and schedule; only the CR term
    differs (0 then 2.0 late, against 0 throughout)."""
    cr, plain = load_config("dsprites"), load_config("dsprites-infogan")
    assert cr.latent == plain.latent and cr.model == plain.model and cr.data == plain.data
    assert len(cr.spec.codes) == 5 and cr.spec.noise.dim == 5 and cr.optim.batch_size == 64
    assert (cr.optim.lr_g, cr.optim.lr_d, cr.optim.lr_q, cr.optim.g_steps) == (1e-3, 2e-3, 2e-3, 2)
    assert cr.loss.lambda_continuous == plain.loss.lambda_continuous == 0.05
    assert cr.loss.cr_weight_late == 2.0 and 0 < cr.loss.cr_late_from < cr.train.epochs * 737_280
    assert not plain.loss.cr_weight and plain.loss.cr_weight_late is None
    assert cr.train == plain.train and cr.train.metrics_every > 0
    assert load_config("mnist").train.metrics_every == 0  # off unless asked for


def test_cr_needs_two_codes():
    with pytest.raises(ValueError, match="at least 2 codes"):
        load_config("dsprites", ["latent.codes=[{ name = 'c1', type = 'continuous' }]"])


def test_the_seed_range_holds_for_new_runs_not_for_older_checkpoints():
    """A new run's seed is 0..2^32-1; a checkpoint's config (read by Config.from_dict) keeps whatever seed its run
    had, so a run started before the check still resumes, evaluates and exports."""
    cfg = load_config("mnist")
    old = cfg.to_dict()
    old["train"]["seed"] = -1
    assert Config.from_dict(old).train.seed == -1
    with pytest.raises(ValueError, match="0..4294967295, got -1"):
        load_config("mnist", ["train.seed=-1"])
    assert load_config("mnist", ["train.seed=4294967295"]).train.seed == 2**32 - 1


def test_widths_and_sizes_that_switch_something_off_may_be_0():
    cfg = load_config("dsprites", ["model.widths={style_late = 0, ch = 16}", "train.metrics_sizes={dci_train = 0}"])
    assert cfg.model.widths == {"style_late": 0, "ch": 16} and cfg.train.metrics_sizes == {"dci_train": 0}


def test_a_setting_given_twice_on_the_command_line_is_refused_not_the_last_one_kept(capsys):
    from training.cli import main

    for argv, says in (
        (["--set", "train.epochs=1", "--set", "train.epochs=3"], "train.epochs is given twice (1 and 3); give it once"),
        (["--set", "train.seed=7", "--seed", "2"], "train.seed is given twice (7 and 2)"),  # a flag sets one too
        (["--set", "train.candidates=1", "--set", "train.restarts=3"], "train.restarts is given twice"),  # old name
    ):
        with pytest.raises(SystemExit) as done:
            main(["train", "mnist", *argv])
        err = capsys.readouterr().err + str(done.value.code)
        assert says in err and "Traceback" not in err, err
    # in code, a later override replaces an earlier one (tests build configs that way)
    assert load_config("mnist", ["train.epochs=1", "train.epochs=3"]).train.epochs == 3


def test_null_unsets_an_optional_setting():
    assert load_config("mnist", ["optim.lr_q=0.001"]).optim.lr_q == 0.001
    assert load_config("mnist", ["optim.lr_q=null"]).optim.lr_q is None
    assert load_config("mnist", ["optim.lr_q=None"]).optim.lr_q is None
    with pytest.raises(ValueError, match="optim.lr_g must be a finite number, got None"):
        load_config("mnist", ["optim.lr_g=null"])  # not optional


def test_a_file_with_the_old_restart_key_takes_the_new_one_from_set(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "training" / "configs" / "mnist.toml").read_text()
    old = tmp_path / "old.toml"
    old.write_text(re.sub(r"^restarts = ", "candidates = ", text, flags=re.M))
    assert "candidates = " in old.read_text()
    assert load_config(old, ["train.restarts=1"]).train.restarts == 1  # was: "the same setting; give only ..."


def test_a_folder_named_like_a_config_does_not_hide_it_and_toml_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()  # the data folder beside the command
    assert load_config("mnist").name == "mnist"
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="a folder, not a config file"):
        load_config("runs")
    (tmp_path / "broken.toml").write_text("x = [")
    with pytest.raises(ValueError, match="broken.toml: "):
        load_config("broken.toml")
