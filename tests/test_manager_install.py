"""Installed the way users install it: through ComfyUI-Manager, on the newest ComfyUI the tests run, offline.

The Manager is the pip package the ComfyUI tree's manager_requirements.txt pins (4.2.2 for 0.33.0), run by
ComfyUI itself (--enable-manager) with its config in <user dir>/__manager/config.ini: network_mode offline,
security_level normal, allow_git_url_install on, the server on 127.0.0.1 (devtools/manager_install.py). The
pack is a snapshot of this repository served by `git daemon` on loopback. The steps, each followed by a
fresh ComfyUI start and a look at what it shows:

1. install: the legacy UI's "Install via Git URL" (the only git-URL install of the Manager's HTTP API in 4.2.2;
   ComfyUI started with --enable-manager-legacy-ui), then ComfyUI restarted by the user with --enable-manager;
2. disable, 3. enable, 4. update (a new commit served), 5. uninstall: the Manager dialog's calls
   (POST /v2/manager/queue/task, /v2/manager/queue/start), each followed by the Manager's Restart
   (POST /v2/manager/reboot, which re-executes ComfyUI in place).

Every step must leave ComfyUI starting without failed imports or tracebacks, the pack present or absent
everywhere ComfyUI shows it (nodes, sampler, schedulers, web extension, templates, the Manager's list), and
the user's models, outputs, inputs, workflows and other pack as they were.
"""
from __future__ import annotations

import os

import pytest

from devtools.manager_install import (OTHER_PACK, OTHER_PACK_NODE, ManagerScenario, installed_distributions,
                                     manager_pin, pack_declares, tool_problem)

SCRIPT = "instaflow_convert.js"  # the pack's frontend extension, served under /extensions/<pack folder>/


@pytest.fixture(scope="module")
def scenario(comfyui_dir, tmp_path_factory):
    if not (comfyui_dir / "manager_requirements.txt").is_file():
        pytest.skip(f"{comfyui_dir} has no manager_requirements.txt: ComfyUI 0.3.75 and older run the Manager "
                    "as a custom node, not as the pip package that --enable-manager starts")
    problem = tool_problem()
    if problem:
        message = f"cannot install through ComfyUI-Manager here: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    scenario = ManagerScenario.create(comfyui_dir, tmp_path_factory.mktemp("manager_install"))
    scenario.venv_before = installed_distributions()
    try:
        yield scenario
    finally:  # no ComfyUI and no git daemon outlive the module, whatever failed
        scenario.close()


@pytest.fixture(scope="module")
def declared(scenario):
    return pack_declares(scenario.repository)


@pytest.fixture(scope="module")
def before(scenario):
    """The first start, with the Manager's legacy UI (its git-URL install) and without the pack."""
    scenario.start(legacy_ui=True)
    seen = scenario.observe(SCRIPT)
    seen.extra["manager_version"] = scenario.request("GET", "/v2/manager/version")[1].decode()
    return seen


@pytest.fixture(scope="module")
def installed(scenario, before):
    scenario.install_from_git_url()
    scenario.stop()
    scenario.start()  # restarted by the user, without the legacy UI: the default Manager from here on
    return scenario.observe(SCRIPT)


@pytest.fixture(scope="module")
def disabled(scenario, installed):
    scenario.run_task("disable", {"node_name": scenario.folder, "is_unknown": True})
    scenario.reboot()
    return scenario.observe(SCRIPT)


@pytest.fixture(scope="module")
def enabled(scenario, disabled):
    scenario.run_task("enable", {"cnr_id": scenario.folder})
    scenario.reboot()
    return scenario.observe(SCRIPT)


@pytest.fixture(scope="module")
def updated(scenario, enabled):
    # A new commit that ComfyUI serves as it is: a line appended to the frontend script.
    scenario.publish_commit(f"web/{SCRIPT}", "// update served by the Manager test\n", "an update for the Manager to fetch")
    scenario.run_task("update", {"node_name": scenario.folder, "node_ver": "unknown"})
    scenario.reboot()
    return scenario.observe(SCRIPT)


@pytest.fixture(scope="module")
def uninstalled(scenario, updated):
    scenario.run_task("uninstall", {"node_name": scenario.folder, "is_unknown": True})
    scenario.reboot()
    return scenario.observe(SCRIPT)


STEPS = ["installed", "disabled", "enabled", "updated", "uninstalled"]
PRESENT = {"installed": True, "disabled": False, "enabled": True, "updated": True, "uninstalled": False}


@pytest.fixture(params=STEPS)
def step(request):
    """(step name, what the ComfyUI start after that step showed); the steps build on each other in order."""
    return request.param, request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------ the Manager under test


def test_manager_is_the_version_the_comfyui_tree_pins(comfyui_dir, before):
    assert before.extra["manager_version"] == f"V{manager_pin(comfyui_dir)}"


def test_comfyui_starts_with_the_manager_and_without_the_pack(before, scenario):
    assert not before.problems, before.problems
    assert "[START] ComfyUI-Manager" in before.log and "network_mode: offline" in before.log
    assert scenario.folder not in before.imported and OTHER_PACK in before.imported


# ------------------------------------------------------------------------------ every step


def test_comfyui_starts_cleanly_after_each_step(step):
    name, seen = step
    assert not seen.problems, f"after {name}: {seen.problems}"


def test_pack_is_imported_only_when_enabled(step, scenario):
    name, seen = step
    assert (scenario.folder in seen.imported) == PRESENT[name], f"after {name}: imported {seen.imported}"


def test_every_node_sampler_and_scheduler_is_listed_only_when_enabled(step, declared):
    name, seen = step
    listed = {"nodes": set(declared["nodes"]) & seen.node_ids,
              "samplers": set(declared["samplers"]) & set(seen.samplers),
              "schedulers": set(declared["schedulers"]) & set(seen.schedulers)}
    expected = {k: set(declared[k]) if PRESENT[name] else set() for k in listed}
    assert listed == expected, f"after {name}"


def test_web_extension_is_served_only_when_enabled(step, scenario):
    name, seen = step
    url = f"/extensions/{scenario.folder}/{SCRIPT}"
    assert (url in seen.extensions) == PRESENT[name], f"after {name}: {seen.extensions}"
    assert (seen.served_js is not None) == PRESENT[name], f"after {name}"


def test_templates_are_listed_only_when_enabled(step, scenario, declared):
    name, seen = step
    expected = declared["templates"] if PRESENT[name] else None
    listed = seen.templates.get(scenario.folder)
    assert (sorted(listed) if listed is not None else None) == expected, f"after {name}"


def test_users_files_and_other_pack_are_untouched(step, before):
    name, seen = step
    assert seen.user_files == before.user_files, f"after {name}"
    assert OTHER_PACK_NODE in seen.node_ids and OTHER_PACK in seen.imported, f"after {name}"


# ------------------------------------------------------------------------------ what each step did


def test_install_clones_the_served_commit_into_custom_nodes_under_the_repository_name(installed, scenario):
    assert installed.enabled_dirs == sorted([OTHER_PACK, scenario.folder])
    assert installed.head == installed.served_head
    assert installed.manager_list[scenario.folder]["enabled"] is True


def test_installed_pack_serves_its_frontend_script_as_published(installed):
    assert installed.served_js == installed.published_js


def test_disable_moves_the_pack_to_the_disabled_folder_and_the_manager_lists_it_disabled(disabled, scenario):
    assert scenario.folder not in disabled.enabled_dirs and scenario.folder in disabled.disabled_dirs
    assert disabled.manager_list[scenario.folder]["enabled"] is False


def test_enable_moves_the_pack_back_and_the_manager_lists_it_enabled(enabled, scenario):
    assert scenario.folder in enabled.enabled_dirs and scenario.folder not in enabled.disabled_dirs
    assert enabled.manager_list[scenario.folder]["enabled"] is True


def test_update_fetches_the_new_commit_and_comfyui_serves_it(updated, enabled):
    assert updated.served_head != enabled.served_head  # the step published a commit
    assert updated.head == updated.served_head
    assert updated.served_js == updated.published_js != enabled.served_js


def test_uninstall_removes_every_copy_of_the_pack(uninstalled, scenario):
    assert uninstalled.enabled_dirs == [OTHER_PACK] and uninstalled.disabled_dirs == []
    assert scenario.folder not in uninstalled.manager_list


def test_manager_left_the_python_environment_as_it_was(uninstalled, scenario):
    # The Manager pip-installs a pack's requirements and "fixes" torch, opencv and the frontend at start-up;
    # the pack needs nothing beyond ComfyUI, so no step may change the test venv.
    assert installed_distributions() == scenario.venv_before
