"""A served model's file identity (what GET /models/{id}/files/{name} checks before sending a file)."""

from backend.core.model import file_identity


def test_file_identity_of_a_file_gone_with_its_folder(tmp_path):
    f = tmp_path / "model" / "generator.onnx"
    f.parent.mkdir()
    f.write_bytes(b"onnx")
    assert file_identity(f) is not None
    f.unlink()
    assert file_identity(f) is None
    f.parent.rmdir()
    assert file_identity(f) is None
    # the model folder replaced by a file: stat raises NotADirectoryError, which was a 500 instead of the 503
    f.parent.write_text("not a folder")
    assert file_identity(f) is None
