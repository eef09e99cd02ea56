from early_exit.training import hardware


def test_a_job_records_what_it_ran_on():
    record = hardware.describe("cpu")
    assert record["device"] == "cpu" and record["cuda_device"] is None
    assert record["cpu"] and record["cores"] >= 1 and record["torch_threads"] >= 1
    assert record["torch"][0].isdigit()
