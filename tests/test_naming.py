"""Naming: logical paths, character_map and remap AVUs, checked against the real 0.7.0 tool.

Every expected value marked "0.7.0" was produced by irods-capability-automated-ingest 0.7.0
itself (its ``char_map_util.translate_path``, one fresh process per map because it caches the
suffix alphabet per process; and the ``filesystem_sync_entry`` base64 formula), then pasted here.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from hpcingest.naming import (
    Avu,
    CharacterMap,
    CharacterMapError,
    catalog_physical_path,
    decode_unicode_error_name,
    is_digest_name,
    link_target_avu,
    logical_path,
    special_file_avu,
    translate_path,
    unicode_error_name,
)

MAPS = {
    "example_regex": {re.compile("[^a-zA-Z0-9]"): "_"},  # examples/register_using_char_map.py
    "demo_list": [(("!", "~", "0", "1"), "_"), (re.compile("[\u0100-\U00101fff]"), "~")],
    "str_keys": {"-": "_", " ": "_", "@": "_"},
    "no_separator": {("-", "~", "_"): "."},
    "digits_changed": [(re.compile("[0-9]"), "x"), (re.compile("[ @!]"), "-")],
    "predicate": {(lambda c: not c.isascii()): "_"},
}

# 0.7.0: translate_path(path, map) for each map and path.
TRANSLATED = {
    'example_regex': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test_file_with_5_non_alphas_iQRy064Rz5Y66',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my_project_M8/_n_c_d_____txt_EjBVOmZGUrJZ3E3iMgdt2uEmIzi61Iv',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_NADVdiArJMd37zclKxhKuzYCXJsm9heb8SNrN9',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x_y_R4',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/_leading_J',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file_txt_gh',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/__smile_dat_UFaceRmDPEk',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/0_1_2_3_4_5_qPzSTgeA06',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/____KITOkjAPXRg',
    },
    'demo_list': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test-file_with@5_non.alphas-PWjje',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my project/ünïcödé-~~.txt-z3hxAMAOC53',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x-y',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/-leading',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file.txt',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/~ smile.dat-6rMvd7',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/____2_3-4@5-owYHRUPsm3',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/~~~-k6StJSPV2rp',
    },
    'str_keys': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test_file~with_5!non.alphas~keYJ4',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my_project~M8/ünïcödé_名前.txt~Dt',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p~NADVdiArJMd37zclKxhKuzYCXJsm9heb8SNrN9',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x_y~R4',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/_leading~J',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file.txt',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/😀_smile.dat~E4',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/0!1~2_3_4_5~ss998',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/ĀāĂ',
    },
    'no_separator': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test.file.with@5!non.alphasGUXJ4',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my project/ünïcödé.名前.txtDt',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.pNADVdiArJMd37zclKxhKuzYCXJsm9heb8SNrN9',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x.yR4',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/.leadingJ',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file.txt',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/😀 smile.dat',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/0!1.2.3.4@5FGcPiB51',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/ĀāĂ',
    },
    'digits_changed': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test-file~with-x-non.alphas-HuBZlAmp',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my-project-yk/ünïcödé-名前.txt',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x-y',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/-leading',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file.txt',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/😀-smile.dat-Cf',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/x-x~x_x-x-x-zBQGTLkpLpQGMGbcYNnWl',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/ĀāĂ',
    },
    'predicate': {
        '/tempZone/home/rods/dir/test-file~with@5!non.alphas':
            '/tempZone/home/rods/dir/test-file~with@5!non.alphas',
        '/tempZone/home/rods/my project/ünïcödé-名前.txt':
            '/tempZone/home/rods/my project/_n_c_d_-__.txt-zJdWSSmqkvN7Hgl2mzKANcgmL6',
        '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p':
            '/tempZone/home/rods/a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p',
        '/tempZone//home/rods/x-y/':
            '/tempZone/home/rods/x-y',
        '/tempZone/home/rods/-leading':
            '/tempZone/home/rods/-leading',
        '/tempZone/home/rods/plain/file.txt':
            '/tempZone/home/rods/plain/file.txt',
        '/tempZone/home/rods/😀 smile.dat':
            '/tempZone/home/rods/_ smile.dat-KNNcp4',
        '/tempZone/home/rods/0!1~2_3-4@5':
            '/tempZone/home/rods/0!1~2_3-4@5',
        '/tempZone/home/rods/ĀāĂ':
            '/tempZone/home/rods/___-KITOkjAPXRg',
    },
}


@pytest.mark.parametrize("map_name,path,expected", [
    (m, p, e) for m, d in TRANSLATED.items() for p, e in d.items()])
def test_translate_path_matches_0_7_0(map_name, path, expected):
    assert translate_path(path, CharacterMap(MAPS[map_name])) == expected


def test_suffix_alphabet_follows_the_map():
    assert CharacterMap(MAPS["example_regex"]).separator == "_"
    assert CharacterMap(MAPS["str_keys"]).separator == "~"
    assert CharacterMap(MAPS["no_separator"]).separator == ""
    assert CharacterMap(MAPS["digits_changed"]).radix.isalpha()


ROOT = b"/data/ufs/1700000000"
CHARMAP = CharacterMap(MAPS["example_regex"])


@pytest.mark.parametrize("target,relpath,expected,b64", [
    # 0.7.0: translate_path(os.path.join(target, relpath), map), b64encode(abspath) for the AVU
    ("/tempZone/home/rods/1700000000", b"test-file~with@5!non.alphas",
     "/tempZone/home/rods/1700000000/test_file_with_5_non_alphas_iQRy064Rz5Y66",
     "L2RhdGEvdWZzLzE3MDAwMDAwMDAvdGVzdC1maWxlfndpdGhANSFub24uYWxwaGFz"),
    ("/tempZone/home/rods/proj", b"sub dir/file name.txt",
     "/tempZone/home/rods/proj/sub_dir_Uc/file_name_txt_YfoG4",
     "L2RhdGEvdWZzLzE3MDAwMDAwMDAvc3ViIGRpci9maWxlIG5hbWUudHh0"),
    # the target itself is translated too, so every entry gets the AVU
    ("/tempZone/home/rods/my-proj", b"plain", "/tempZone/home/rods/my_proj_Z8/plain",
     "L2RhdGEvdWZzLzE3MDAwMDAwMDAvcGxhaW4="),
])
def test_character_map_logical_path_and_avu(target, relpath, expected, b64):
    name = logical_path(target, ROOT, relpath, CHARMAP)
    assert name.path == expected
    assert name.avus == (Avu("irods::automated_ingest::character_map", b64,
                             "python3.base64.b64encode(full_path_of_source_file)"),)
    assert name.meta_fields() == {"b64_reason": "character_map", "b64_path_str_charmap": b64.encode()}


def test_character_map_without_change_adds_nothing():
    name = logical_path("/tempZone/home/rods/proj", ROOT, b"plain", CHARMAP)
    assert (name.path, name.avus, name.reason, name.meta_fields()) == (
        "/tempZone/home/rods/proj/plain", (), None, {})


def test_plain_names():
    assert logical_path("/tempZone/home/rods/t", ROOT, b"").path == "/tempZone/home/rods/t"
    assert logical_path("/tempZone/home/rods/t/", ROOT, b"a/b c.txt").path == "/tempZone/home/rods/t/a/b c.txt"
    assert logical_path("/tempZone/home/rods/t", ROOT, "d/\u00e9t\u00e9".encode()).path == "/tempZone/home/rods/t/d/\u00e9t\u00e9"


# 0.7.0: "irods_UnicodeEncodeError_" + b64encode(abspath.encode("utf8", "surrogateescape"))
BAD = b"test_register_with_unicode_encode_error_path_" + "\u1000".encode("utf8")[:-1]  # the old test's name
BAD_B64 = "L2RhdGEvdWZzLzE3MDAwMDAwMDAvdGVzdF9yZWdpc3Rlcl93aXRoX3VuaWNvZGVfZW5jb2RlX2Vycm9yX3BhdGhf4YA="
UEE_AVU = ("irods::automated_ingest::UnicodeEncodeError", "python3.base64.b64encode(full_path_of_source_file)")


def test_unicode_error_in_root_matches_0_7_0():
    name = logical_path("/tempZone/home/rods/1700000000", ROOT, BAD)
    assert name.path == "/tempZone/home/rods/1700000000/irods_UnicodeEncodeError_" + BAD_B64
    assert name.avus == (Avu(UEE_AVU[0], BAD_B64, UEE_AVU[1]),)
    assert name.meta_fields() == {
        "b64_reason": "UnicodeEncodeError", "b64_path_str": BAD_B64.encode(),
        "unicode_error_filename": "irods_UnicodeEncodeError_" + BAD_B64}
    # 0.7.0 registers <dir>/irods_UnicodeEncodeError_<b64> as the physical path
    assert catalog_physical_path(ROOT + b"/" + BAD) == "/data/ufs/1700000000/irods_UnicodeEncodeError_" + BAD_B64
    assert decode_unicode_error_name(name.path.rsplit("/", 1)[1]) == ROOT + b"/" + BAD


def test_unicode_error_in_subdirectory_keeps_the_directory():
    """0.7.0 produced <target>/<reldir> (no file name) here and failed; we keep the file's own name slot."""
    name = logical_path("/tempZone/home/rods/t", b"/data/ufs", b"1700000000/" + BAD)
    assert name.path == "/tempZone/home/rods/t/1700000000/irods_UnicodeEncodeError_" + BAD_B64
    assert name.avus == (Avu(UEE_AVU[0], BAD_B64, UEE_AVU[1]),)


def test_unicode_error_name_never_contains_a_slash():
    # 0.7.0 gives "irods_UnicodeEncodeError_L2x1c3RyZS9wcm9qL//+Pz4=", which splits into collections
    source = b"/lustre/proj/\xff\xfe?>"
    assert unicode_error_name(source) == "irods_UnicodeEncodeError_L2x1c3RyZS9wcm9qL__+Pz4="
    name = logical_path("/z/home/u/t", b"/lustre/proj", b"\xff\xfe?>")
    assert name.path == "/z/home/u/t/irods_UnicodeEncodeError_L2x1c3RyZS9wcm9qL__+Pz4="
    assert name.avus[0].value == "L2x1c3RyZS9wcm9qL//+Pz4="  # the AVU stays standard base64
    assert decode_unicode_error_name("irods_UnicodeEncodeError_L2x1c3RyZS9wcm9qL__+Pz4=") == source


def test_bad_directory_is_remapped_and_children_follow_it():
    directory = logical_path("/z/t", b"/src", b"caf\xe9")
    child = logical_path("/z/t", b"/src", b"caf\xe9/menu.txt")
    assert directory.path == "/z/t/" + unicode_error_name(b"/src/caf\xe9")
    assert child.path == directory.path + "/menu.txt"
    assert child.unicode_error_filename is None
    assert child.avus == (Avu(UEE_AVU[0], "L3NyYy9jYWbpL21lbnUudHh0", UEE_AVU[1]),)
    assert catalog_physical_path(b"/src/caf\xe9/menu.txt") == directory.path.replace("/z/t", "/src") + "/menu.txt"


def test_unicode_error_elements_are_not_character_mapped_but_the_rest_is():
    name = logical_path("/z/my-t", b"/src", b"a b/caf\xe9", CHARMAP)
    elements = name.path.split("/")
    assert elements[2] == CHARMAP.translate_element("my-t")
    assert elements[3] == CHARMAP.translate_element("a b")
    assert elements[4] == unicode_error_name(b"/src/a b/caf\xe9")
    assert [a.attribute for a in name.avus] == [
        "irods::automated_ingest::UnicodeEncodeError", "irods::automated_ingest::character_map"]
    assert name.reason == "UnicodeEncodeError"


def test_special_file_avus():
    assert special_file_avu("socket", b"/src/s") == Avu("socket_target", "socket", "automated_ingest")
    assert special_file_avu("link", b"/src/d/l", b"../x") == Avu("link_target", "/src/d/../x", "automated_ingest")
    assert special_file_avu("link", b"/src/d/l", b"/abs/x").value == "/abs/x"
    assert link_target_avu(b"/src/l", b"\xff").value == "/src/\\xff"
    assert special_file_avu("regular", b"/src/f") is None
    with pytest.raises(ValueError):
        special_file_avu("link", b"/src/l")


@pytest.mark.parametrize("spec,message", [
    ({"ab": "_"}, "key 'ab' is not a single character"),
    ({"": "_"}, "key '' is not a single character"),
    ({("a", "bc"): "_"}, "must be a tuple of single characters"),
    ({"-": "__"}, "value '__' for key '-' is not a single character"),
    ({7: "_"}, "key 7 is not a character"),
    ({"-": None}, "value None for key '-' is not a string"),
    (42, "must return a dict or an iterable of (key, value) pairs"),
    ([("a", "b", "c")], "must return a dict or an iterable of (key, value) pairs"),
    ({re.compile("[^a]"): "_"}, "fewer than two of [0-9A-Za-z] unchanged"),
])
def test_invalid_character_maps(spec, message):
    with pytest.raises(CharacterMapError, match=re.escape(message)):
        CharacterMap(spec)


def test_valid_key_kinds():
    CharacterMap({re.compile("[ ]"): lambda m: "_", str.isspace: "_", ("a", "b"): "", "c": "d"})


def test_a_name_that_would_pass_255_bytes_becomes_a_bounded_digest():
    """b64 of a source path past ~172 bytes would be a component no vault file can have."""
    fits = b"/" + b"p" * 150 + b"/\xe9"
    assert len(unicode_error_name(fits)) <= 255 and not is_digest_name(unicode_error_name(fits))
    long = b"/" + b"p" * 200 + b"/caf\xe9"
    name = unicode_error_name(long)
    assert name == "irods_UnicodeEncodeError_sha256-" + hashlib.sha256(long).hexdigest()
    assert len(name) < 255 and unicode_error_name(long + b"x") != name
    with pytest.raises(ValueError, match="AVU"):
        decode_unicode_error_name(name)
    entry = logical_path("/z/t", b"/" + b"p" * 200, b"caf\xe9")
    assert entry.path == "/z/t/" + name
    assert base64.b64decode(entry.avus[0].value) == long  # the AVU reverses it
    assert entry.collection_avus == entry.avus  # a directory so named is annotated too
    assert logical_path("/z/t", b"/src", b"caf\xe9").collection_avus == ()  # not the old short names
