"""``elektronn.labels``: ID labels to boundary maps, 2D images to h5 cubes, and its CLI."""

import subprocess
import sys

import h5py
import makers
import matplotlib
import numpy as np
import pytest

from elektronn.labels import (
    BoundarySpec,
    H5Ref,
    LabelError,
    boundary_map,
    convert_boundaries,
    image_files,
    main,
    natural_key,
    read_image,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "elektronn.labels", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def two_regions(shape=(4, 6, 1)):
    """ID 1 in columns y < 3, ID 2 in y >= 3: one interface between y = 2 and y = 3."""
    ids = np.ones(shape, dtype=np.uint16)
    ids[:, 3:] = 2
    return ids


def blocky_ids(shape=(12, 10, 11), seed=0):
    """Random IDs (0..5) in 2x2x2 blocks: many interfaces in every direction."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 6, size=[(n + 1) // 2 for n in shape])
    return coarse.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: shape[0], : shape[1], : shape[2]]


def write_h5(path, **datasets):
    makers.write_h5(path, "a", **datasets)


def read_h5(path, key):
    with h5py.File(path, "r") as h5:
        return h5[key][()], h5[key].dtype, h5[key].compression


# --- boundary_map ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["2d", "3d"])
def test_boundary_on_both_sides_of_an_interface(mode):
    labels = boundary_map(two_regions(), mode)
    expected = np.zeros((4, 6, 1), np.uint8)
    expected[:, 2:4] = 1
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)


def test_id_zero_is_an_ordinary_id_by_default():
    ids = two_regions() - 1  # IDs 0 and 1
    assert boundary_map(ids)[:, 2:4].all()


def test_2d_ignores_z_neighbours_3d_does_not():
    ids = np.ones((3, 3, 2), dtype=np.int32)
    ids[:, :, 1] = 7
    assert not boundary_map(ids, "2d").any()
    assert boundary_map(ids, "3d").all()


def test_thickness_dilates_in_plane_in_2d_and_across_z_in_3d():
    ids = two_regions((4, 10, 5))
    ids[:, :, [0, 1, 3, 4]] = 1  # the interface exists only in slice z = 2
    thick_2d = boundary_map(ids, "2d", thickness=3)
    np.testing.assert_array_equal(np.flatnonzero(thick_2d[0, :, 2]), [0, 1, 2, 3, 4, 5])
    assert not thick_2d[:, :, [0, 1, 3, 4]].any()
    thick_3d = boundary_map(ids, "3d", thickness=2)
    # z-neighbours of slice 2 differ too, so the one-voxel boundary already spans z = 1..3
    np.testing.assert_array_equal(np.flatnonzero(thick_3d[0, 3, :]), [0, 1, 2, 3, 4])


def test_background_id_is_never_boundary_but_outlines_objects():
    labels = boundary_map(two_regions(), thickness=2, background_id=1)
    np.testing.assert_array_equal(np.flatnonzero(labels[0, :, 0]), [3, 4])


def test_ignored_ids_become_minus_one_and_make_no_boundary():
    ids = two_regions((4, 8, 1))
    ids[:, 6:] = 0
    labels = boundary_map(ids, ignore_ids=[0])
    assert labels.dtype == np.int16
    np.testing.assert_array_equal(labels[0, :, 0], [0, 0, 1, 1, 0, 0, -1, -1])


def test_gap_id_makes_the_gap_boundary_and_keeps_touching_objects_apart():
    ids = np.array([[1, 1, 0, 2, 2, 3, 3]]).T[:, :, None].repeat(2, axis=1).transpose(1, 0, 2)
    labels = boundary_map(ids, gap_id=0)  # objects 1 | gap | 2 touching 3
    np.testing.assert_array_equal(labels[0, :, 0], [0, 0, 1, 0, 1, 1, 0])
    default = boundary_map(ids)  # hollow double outline around the gap
    np.testing.assert_array_equal(default[0, :, 0], [0, 1, 1, 1, 1, 1, 0])


@pytest.mark.slow
def test_gap_id_on_isbi_membranes_gives_back_the_membranes(shared_data, tmp_path):
    """ISBI 2012 (1 = membrane) exported as IDs with 0 gaps: --gap-id 0 restores it exactly."""
    from scipy import ndimage

    with h5py.File(shared_data / "isbi2012" / "train-labels.h5", "r") as f:
        membrane = f["labels"][:, :, :3] == 1
    ids = np.stack([ndimage.label(~membrane[:, :, z])[0] for z in range(3)], axis=2)
    with h5py.File(tmp_path / "ids.h5", "w") as f:
        f["seg"] = ids.astype(np.uint32)
    args = ["boundaries", f"{tmp_path}/ids.h5:seg", f"{tmp_path}/lab.h5:lab", "--gap-id", "0"]
    assert main(args) == 0
    with h5py.File(tmp_path / "lab.h5", "r") as f:
        np.testing.assert_array_equal(f["lab"][...], membrane)
    assert 0.2 < membrane.mean() < 0.25 and boundary_map(ids).mean() < 0.15  # hollow outlines


def test_extra_class_overrides_boundary_and_ignore():
    ids = two_regions((4, 8, 1))
    ids[:, 6:] = 0
    mito = np.zeros(ids.shape, bool)
    mito[0, 1:7] = True
    labels = boundary_map(ids, ignore_ids=[0], extras=[(mito, 2)])
    np.testing.assert_array_equal(labels[0, :, 0], [0, 2, 2, 2, 2, 2, 2, -1])
    np.testing.assert_array_equal(labels[1, :, 0], [0, 0, 1, 1, 0, 0, -1, -1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ids=np.zeros((4, 4), int)), "must be a non-empty"),
        (dict(ids=np.zeros((4, 4, 2), np.float32)), "must be integers"),
        (dict(ids=np.zeros((4, 4, 2), int), mode="4d"), "'2d' or '3d'"),
        (dict(ids=np.zeros((4, 4, 2), int), thickness=0), "thickness"),
        (dict(ids=np.zeros((4, 4, 2), int), extras=[(np.ones((4, 4, 1)), 2)]), "same size"),
        (dict(ids=np.zeros((4, 4, 2), int), extras=[(np.ones((4, 4, 2)), 1)]), "2..255"),
        (dict(ids=np.zeros((4, 4, 2), int), background_id=0, ignore_ids=[0]), "both"),
        (dict(ids=np.zeros((4, 4, 2), int), gap_id=0, ignore_ids=[0]), "one role"),
    ],
)
def test_bad_arguments_are_label_errors(kwargs, match):
    with pytest.raises(LabelError, match=match):
        boundary_map(**kwargs)


# --- chunk-wise h5 conversion ----------------------------------------------------------------


@pytest.mark.parametrize("mode, thickness", [("2d", 1), ("2d", 2), ("3d", 1), ("3d", 3)])
def test_chunked_h5_conversion_equals_in_memory(tmp_path, mode, thickness):
    ids = blocky_ids()
    mito = blocky_ids(seed=1) == 5
    write_h5(tmp_path / "in.h5", ids=ids, mito=mito)
    spec = BoundarySpec(mode, thickness, ignore_ids=(0,))
    counts = convert_boundaries(
        H5Ref(str(tmp_path / "in.h5"), "ids"),
        H5Ref(str(tmp_path / "out.h5"), "lab"),
        spec,
        extras=[(H5Ref(str(tmp_path / "in.h5"), "mito"), 3)],
        slab_slices=3,  # 11 slices: slabs of 3, 3, 3, 2
    )
    expected = boundary_map(ids, mode, thickness, ignore_ids=[0], extras=[(mito, 3)])
    labels, dtype, compression = read_h5(tmp_path / "out.h5", "lab")
    np.testing.assert_array_equal(labels, expected)
    assert (dtype, compression) == (np.int16, "gzip")
    assert counts == {int(c): int((expected == c).sum()) for c in np.unique(expected)}


def test_output_may_go_into_the_input_file(tmp_path):
    write_h5(tmp_path / "v.h5", ids=blocky_ids())
    source, target = H5Ref(str(tmp_path / "v.h5"), "ids"), H5Ref(str(tmp_path / "v.h5"), "lab")
    convert_boundaries(source, target, BoundarySpec(), slab_slices=4)
    np.testing.assert_array_equal(read_h5(tmp_path / "v.h5", "lab")[0], boundary_map(blocky_ids()))
    with pytest.raises(LabelError, match="already exists"):
        convert_boundaries(source, target, BoundarySpec())
    convert_boundaries(source, target, BoundarySpec("3d"), overwrite=True)
    np.testing.assert_array_equal(
        read_h5(tmp_path / "v.h5", "lab")[0], boundary_map(blocky_ids(), "3d")
    )


@pytest.mark.slow
def test_cli_boundaries(tmp_path):
    ids = blocky_ids()
    mito = blocky_ids(seed=2) == 1
    write_h5(tmp_path / "in.h5", ids=ids)
    write_h5(tmp_path / "mito.h5", m=mito.astype(np.uint8))
    result = run_cli(
        "boundaries",
        f"{tmp_path}/in.h5:ids",
        f"{tmp_path}/out.h5:lab",
        "--3d",
        "--thickness",
        "2",
        "--extra",
        f"{tmp_path}/mito.h5:m",
    )
    assert result.returncode == 0, result.stderr
    assert "class 2:" in result.stdout
    labels, dtype, compression = read_h5(tmp_path / "out.h5", "lab")
    np.testing.assert_array_equal(labels, boundary_map(ids, "3d", 2, extras=[(mito, 2)]))
    assert (dtype, compression) == (np.uint8, "gzip")


# --- stacking 2D images ----------------------------------------------------------------------


def grey_rgb(image):
    """A grey image as RGB, so that imsave stores the values unchanged (as RGBA, R == G == B)."""
    return np.repeat(image[..., None], 3, axis=-1)


def test_natural_sort():
    names = ["img10.png", "img2.png", "Img1.png", "img1b.png"]
    assert sorted(names, key=natural_key) == ["Img1.png", "img1b.png", "img2.png", "img10.png"]


@pytest.mark.slow
def test_stack_grey_pngs_restores_arrays_in_natural_order(tmp_path):
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 256, size=(3, 5, 7), dtype=np.uint8)  # 5 rows, 7 columns
    for i, image in zip((1, 2, 10), slices, strict=True):
        plt.imsave(tmp_path / f"img{i}.png", grey_rgb(image))
    result = run_cli("stack", tmp_path, f"{tmp_path}/raw.h5:raw")
    assert result.returncode == 0, result.stderr
    cube, dtype, _ = read_h5(tmp_path / "raw.h5", "raw")
    assert cube.shape == (5, 7, 3) and dtype == np.uint8  # row = x, column = y
    np.testing.assert_array_equal(cube, slices.transpose(1, 2, 0))


@pytest.mark.slow
def test_stack_colour_images_have_channels_first(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(2, 4, 6, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        plt.imsave(tmp_path / f"c{i}.png", image)
    result = run_cli("stack", f"{tmp_path}/c*.png", f"{tmp_path}/rgb.h5:raw")
    assert result.returncode == 0, result.stderr
    cube = read_h5(tmp_path / "rgb.h5", "raw")[0]
    assert cube.shape == (3, 4, 6, 2)  # opaque alpha dropped
    np.testing.assert_array_equal(cube, images.transpose(3, 1, 2, 0))


@pytest.mark.slow
def test_stack_labels_keeps_palette_indices_and_compresses(tmp_path):
    from PIL import Image  # a dependency of matplotlib

    ids = np.array([[0, 1, 1], [2, 2, 7]], dtype=np.uint8)
    palette_image = Image.fromarray(ids, mode="L").convert("P")
    palette_image.putpalette([255, 0, 0, 0, 255, 0] * 128)
    palette_image.save(tmp_path / "a1.png")
    plt.imsave(tmp_path / "a2.png", grey_rgb(ids[::-1]))
    result = run_cli("stack", tmp_path, f"{tmp_path}/ids.h5:ids", "--labels")
    assert result.returncode == 0, result.stderr
    cube, dtype, compression = read_h5(tmp_path / "ids.h5", "ids")
    np.testing.assert_array_equal(cube, np.stack([ids, ids[::-1]], axis=-1))
    assert (dtype, compression) == (np.uint8, "gzip")


def test_colour_label_images_are_refused(tmp_path):
    plt.imsave(tmp_path / "c.png", np.arange(24, dtype=np.uint8).reshape(2, 4, 3))
    with pytest.raises(LabelError, match="one integer value per pixel"):
        read_image(str(tmp_path / "c.png"), labels=True)


def test_tif_needs_tifffile(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import fails as if not installed
    (tmp_path / "a.tif").write_bytes(b"")
    with pytest.raises(LabelError, match="pip install tifffile"):
        read_image(str(tmp_path / "a.tif"))


def test_stack_tifs(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    images = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    for i, image in enumerate(images):
        tifffile.imwrite(tmp_path / f"s{i}.TIF", image)
    tifffile.imwrite(tmp_path / "multi.tiff", images, photometric="minisblack")  # 2 pages
    assert [str(p).rsplit("/", 1)[1] for p in image_files(str(tmp_path / "s*"))] == [
        "s0.TIF",
        "s1.TIF",
    ]
    np.testing.assert_array_equal(read_image(str(tmp_path / "s1.TIF")), images[1])
    with pytest.raises(LabelError, match="multi-page"):
        read_image(str(tmp_path / "multi.tiff"))


# --- errors: one paragraph on stderr, exit code 2 --------------------------------------------


@pytest.fixture
def error_inputs(tmp_path):
    write_h5(tmp_path / "v.h5", ids=blocky_ids((4, 4, 2)), flat=np.zeros((4, 4), int))
    write_h5(tmp_path / "v.h5", out=np.zeros((4, 4, 2), np.uint8))
    plt.imsave(tmp_path / "img1.png", grey_rgb(np.zeros((4, 5), np.uint8)))
    plt.imsave(tmp_path / "img2.png", grey_rgb(np.zeros((5, 4), np.uint8)))
    (tmp_path / "empty").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (("boundaries", "{d}/nope.h5:ids", "{d}/o.h5:lab"), "nope.h5 does not exist"),
        (("boundaries", "{d}/v.h5:idz", "{d}/o.h5:lab"), "keys in it are: 'flat', 'ids', 'out'"),
        (("boundaries", "{d}/v.h5:flat", "{d}/o.h5:lab"), "must be a non-empty (x, y, z)"),
        (("boundaries", "{d}/v.h5:ids", "{d}/v.h5:out"), "--overwrite"),
        (("boundaries", "{d}/v.h5:ids", "{d}/o.h5:lab", "--extra-class", "2"), "once per"),
        (("boundaries", "{d}/v.h5", "{d}/o.h5:lab"), "FILE.h5:KEY"),
        (("stack", "{d}/empty", "{d}/o.h5:raw"), "no image files"),
        (("stack", "{d}/img*.png", "{d}/o.h5:raw"), "img2.png is (x, y) = (5, 4)"),
    ],
)
@pytest.mark.slow
def test_cli_errors_exit_2_without_traceback(error_inputs, args, message):
    result = run_cli(*(a.format(d=error_inputs) for a in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if args[0] == "stack":  # a half-written stack is removed again
        with h5py.File(error_inputs / "o.h5", "a") as h5:
            assert "raw" not in h5
