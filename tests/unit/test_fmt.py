"""kvmnet fmt: the pure formatter (engine/fmt.py) and the command on real files."""
from __future__ import annotations

import textwrap

import pytest

from kvmnet.cli import main
from kvmnet.engine.config.hcl import parse_text
from kvmnet.engine.fmt import format_hcl, same_meaning


def fmt(text: str) -> str:
    return format_hcl(textwrap.dedent(text).lstrip("\n"))


def canon(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def assert_formats(messy: str, expected: str) -> None:
    got = fmt(messy)
    assert got == canon(expected)
    assert format_hcl(got) == got, "formatting is not idempotent"
    before, after = parse_text(canon(messy), "a.hcl"), parse_text(got, "a.hcl")
    assert not before.errors and not after.errors
    assert same_meaning(before, after)


def test_indentation_and_alignment_within_a_block():
    assert_formats('''
        resource "network" "lab" {
        mode="nat"
              bridge  =   "virbr7"
          autostart = true
        }
        ''', '''
        resource "network" "lab" {
          mode      = "nat"
          bridge    = "virbr7"
          autostart = true
        }
        ''')


def test_blank_line_and_nested_block_break_the_alignment_group():
    assert_formats('''
        resource "network" "lab" {
          mode = "nat"
          bridge = "virbr7"

          autostart = true
          ip {
            address = "10.1.0.1"
            prefix = 24
          }
          mtu = 1500
        }
        ''', '''
        resource "network" "lab" {
          mode   = "nat"
          bridge = "virbr7"

          autostart = true
          ip {
            address = "10.1.0.1"
            prefix  = 24
          }
          mtu = 1500
        }
        ''')


def test_one_blank_line_between_top_level_blocks_and_runs_collapsed():
    assert_formats('''


        provider "sysctl" {
          netns = "x"
        }
        variable "a" { default = 1 }
        variable "b" {}



        locals {
          x = 1
        }


        ''', '''
        provider "sysctl" {
          netns = "x"
        }

        variable "a" { default = 1 }

        variable "b" {}

        locals {
          x = 1
        }
        ''')


def test_comments_are_kept_where_they_are():
    assert_formats('''
        # the lab network
        resource "network" "lab" { # opening
            // mode first
          mode = "nat" # trailing
          /* a block
             comment   = kept verbatim */
          bridge = "virbr7"
        }
        # about the next block
        locals {}
        ''', '''
        # the lab network
        resource "network" "lab" { # opening
          // mode first
          mode = "nat" # trailing
          /* a block
             comment   = kept verbatim */
          bridge = "virbr7"
        }

        # about the next block
        locals {}
        ''')


def test_heredoc_bodies_are_left_alone():
    messy = '''
        locals {
        a = 1
          script = <<EOF
           keep   =   this   
        {   not a block
          EOF
            indented = <<-EOT
              x = 1
            EOT
        }
        '''
    got = fmt(messy)
    assert "   keep   =   this   \n{   not a block\n  EOF\n" in got
    assert "      x = 1\n    EOT\n" in got
    assert got.startswith('locals {\n  a      = 1\n  script = <<EOF\n')
    assert "  indented = <<-EOT\n" in got
    assert same_meaning(parse_text(canon(messy), "a.hcl"), parse_text(got, "a.hcl"))
    assert format_hcl(got) == got


def test_multi_line_lists_and_maps():
    assert_formats('''
        resource "sysctl_profile" "t" {
        settings = {
        "net.ipv4.ip_forward" = 1
           "net.core.somaxconn" = 1024
              }
          depends_on = [
        network.lab,
             bridge.br0,
          ]
        interfaces = concat(
        ["a"],
          [for x in local.ports : x if x != "b"],
        )
        }
        ''', '''
        resource "sysctl_profile" "t" {
          settings = {
            "net.ipv4.ip_forward" = 1
            "net.core.somaxconn"  = 1024
          }
          depends_on = [
            network.lab,
            bridge.br0,
          ]
          interfaces = concat(
            ["a"],
            [for x in local.ports : x if x != "b"],
          )
        }
        ''')


def test_equals_and_braces_inside_strings_and_templates_are_untouched():
    assert_formats('''
        locals {
        a = "x=y { [ ("
          long_name = "${var.a == "b" ? "c = d" : "}"}"
        esc = "$${not = a template} %%{nor this}"
        m = {for k, v in var.m : k => "${v}={"}
        }
        ''', '''
        locals {
          a         = "x=y { [ ("
          long_name = "${var.a == "b" ? "c = d" : "}"}"
          esc       = "$${not = a template} %%{nor this}"
          m         = {for k, v in var.m : k => "${v}={"}
        }
        ''')


def test_list_of_objects_and_closing_brackets_on_one_line():
    assert_formats('''
        locals {
        hosts = [
        {
        name = "a"
        ip = "10.0.0.2"
        },
        {name = "b", ip = "10.0.0.3"}]
        }
        ''', '''
        locals {
          hosts = [
            {
              name = "a"
              ip   = "10.0.0.2"
            },
            {name = "b", ip = "10.0.0.3"}]
        }
        ''')


def test_variable_files_top_level_attributes_are_aligned_with_no_blank_lines_added():
    assert_formats('''
        region="lab"
        uplink_name = "eth0"
        ports = {
        web = 8080
        }
        x = 1
        ''', '''
        region      = "lab"
        uplink_name = "eth0"
        ports       = {
          web = 8080
        }
        x = 1
        ''')


def test_canonical_text_is_unchanged_and_empty_stays_empty():
    text = canon('''
        resource "network" "lab" {
          mode = "nat"
        }
        ''')
    assert format_hcl(text) == text
    assert format_hcl("") == ""
    assert format_hcl("\n\n") == ""


# -- the command ------------------------------------------------------------------

MESSY = 'resource "network" "lab" {\nmode="nat"\n  bridge = "virbr7"\n}\n'
TIDY = 'resource "network" "lab" {\n  mode   = "nat"\n  bridge = "virbr7"\n}\n'


def test_fmt_check_lists_unformatted_files_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "main.hcl").write_text(MESSY)
    (tmp_path / "ok.hcl").write_text(TIDY)
    (tmp_path / "kvmnet.vars.hcl").write_text('a="b"\n')
    (tmp_path / "notes.txt").write_text("x=1\n")
    assert main(["-C", str(tmp_path), "fmt", "--check"]) == 1
    out = capsys.readouterr().out.split()
    assert sorted(out) == ["kvmnet.vars.hcl", "main.hcl"]     # relative to -C DIR, as Terraform's -chdir
    assert (tmp_path / "main.hcl").read_text() == MESSY


def test_fmt_rewrites_and_then_check_passes(tmp_path, capsys):
    p = tmp_path / "main.hcl"
    p.write_text(MESSY)
    p.chmod(0o640)
    (tmp_path / "ok.hcl").write_text(TIDY)
    assert main(["-C", str(tmp_path), "fmt"]) == 0
    assert capsys.readouterr().out.split() == [p.name]
    assert p.read_text() == TIDY
    assert p.stat().st_mode & 0o777 == 0o640
    assert main(["-C", str(tmp_path), "fmt", "--check"]) == 0
    assert capsys.readouterr().out == ""


def test_fmt_refuses_a_file_with_a_syntax_error(tmp_path, capsys):
    bad = tmp_path / "bad.hcl"
    bad.write_text('resource "network" "lab" {\n  mode = "nat"\n  bridge = = 1\n}\n')
    good = tmp_path / "main.hcl"
    good.write_text(MESSY)
    assert main(["-C", str(tmp_path), "fmt"]) == 1
    err = capsys.readouterr().err
    assert f"Error: {bad.name}:3: syntax error" in err
    assert bad.read_text().startswith('resource "network" "lab" {\n  mode = "nat"\n  bridge = = 1')
    assert good.read_text() == TIDY     # the other files are still formatted
