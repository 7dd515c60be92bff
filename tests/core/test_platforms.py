"""mlinfra.core.platforms: one platform vocabulary, detection from an environment mapping."""

from __future__ import annotations

import pytest

from mlinfra.core.platforms import PLATFORM_ENV, PLATFORMS, check_platform, detect_platform


def test_vocabulary() -> None:
    assert PLATFORMS == ("local", "colab", "kaggle", "azureml")
    assert PLATFORM_ENV == "MLINFRA_PLATFORM"


@pytest.mark.parametrize(
    ("signal", "platform"),
    [
        ("AZUREML_RUN_ID", "azureml"),
        ("AZUREML_EXPERIMENT_ID", "azureml"),
        ("AZUREML_CR_EXECUTION_WORKING_DIR_PATH", "azureml"),
        ("COLAB_RELEASE_TAG", "colab"),
        ("COLAB_GPU", "colab"),
        ("COLAB_TPU_ADDR", "colab"),
        ("COLAB_BACKEND_VERSION", "colab"),
        ("KAGGLE_KERNEL_RUN_TYPE", "kaggle"),
        ("KAGGLE_URL_BASE", "kaggle"),
        ("KAGGLE_DATA_PROXY_TOKEN", "kaggle"),
    ],
)
def test_each_signal(signal: str, platform: str) -> None:
    assert detect_platform({signal: "1", "HOME": "/root"}) == platform


def test_nothing_is_local() -> None:
    assert detect_platform({}) == "local"
    assert detect_platform({"PATH": "/usr/bin", "AZURE_ML_X": "1", "COLAB": "1"}) == "local"


def test_empty_signal_is_ignored() -> None:
    assert detect_platform({"COLAB_GPU": "", "KAGGLE_URL_BASE": ""}) == "local"


def test_azureml_wins_over_the_others() -> None:
    env = {"KAGGLE_KERNEL_RUN_TYPE": "x", "COLAB_GPU": "1", "AZUREML_RUN_ID": "r"}
    assert detect_platform(env) == "azureml"
    assert detect_platform({"KAGGLE_KERNEL_RUN_TYPE": "x", "COLAB_GPU": "1"}) == "colab"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_override_wins_over_signals(platform: str) -> None:
    env = {PLATFORM_ENV: platform, "AZUREML_RUN_ID": "r", "COLAB_GPU": "1"}
    assert detect_platform(env) == platform


def test_override_is_stripped_and_blank_is_ignored() -> None:
    assert detect_platform({PLATFORM_ENV: "  kaggle \n"}) == "kaggle"
    assert detect_platform({PLATFORM_ENV: "   ", "COLAB_GPU": "1"}) == "colab"


@pytest.mark.parametrize("bad", ["azure", "Colab", "gcp", "LOCAL"])
def test_bad_override_names_the_choices(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        detect_platform({PLATFORM_ENV: bad})
    message = str(info.value)
    assert PLATFORM_ENV in message
    assert repr(bad) in message
    assert "use one of: local, colab, kaggle, azureml" in message


def test_bad_override_suggests_the_spelling() -> None:
    with pytest.raises(ValueError, match="did you mean 'azureml'"):
        detect_platform({PLATFORM_ENV: "azure"})


def test_default_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLATFORM_ENV, "kaggle")
    assert detect_platform() == "kaggle"
    monkeypatch.setenv(PLATFORM_ENV, "nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        detect_platform()


def test_mapping_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLATFORM_ENV, "colab")
    monkeypatch.setenv("KAGGLE_URL_BASE", "x")
    assert detect_platform({}) == "local"


@pytest.mark.parametrize("name", PLATFORMS)
def test_check_platform_accepts(name: str) -> None:
    assert check_platform(name) == name


@pytest.mark.parametrize(
    ("alias", "right"), [("azure", "azureml"), ("aml", "azureml"), ("google_colab", "colab")]
)
def test_check_platform_aliases(alias: str, right: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{right}'"):
        check_platform(alias, what="storage environment")


def test_check_platform_message_names_what() -> None:
    with pytest.raises(ValueError, match="unknown storage environment 'x'; use one of"):
        check_platform("x", what="storage environment")
    with pytest.raises(ValueError, match="unknown platform ''"):
        check_platform("")


# ---- explain_platform: what was detected and why ---------------------------------------------


def test_explain_names_the_signals_that_are_set() -> None:
    from mlinfra.core.platforms import explain_platform

    found = explain_platform({"COLAB_GPU": "1", "COLAB_RELEASE_TAG": "r", "KAGGLE_URL_BASE": "k"})
    assert (found.platform, found.source) == ("colab", "signal")
    assert found.variables == ("COLAB_RELEASE_TAG", "COLAB_GPU")
    assert "COLAB_RELEASE_TAG, COLAB_GPU set" in found.reason


def test_explain_override_and_default() -> None:
    from mlinfra.core.platforms import SIGNALS, explain_platform

    forced = explain_platform({PLATFORM_ENV: "azureml"})
    assert (forced.platform, forced.source, forced.variables) == (
        "azureml",
        "override",
        (PLATFORM_ENV,),
    )
    assert f"{PLATFORM_ENV}=azureml overrides detection" == forced.reason
    default = explain_platform({})
    assert (default.platform, default.source, default.variables) == ("local", "default", ())
    for _, names in SIGNALS:
        for name in names:
            assert name in default.reason
