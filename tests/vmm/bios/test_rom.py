"""The ROM image: size, fixed addresses, trap stubs, tables."""
from vmm.bios import Bios, rom
from vmm.context import BoardContext


def image():
    return Bios(BoardContext()).image


def test_size_reset_vector_date_and_model():
    data = image().data
    assert len(data) == 0x10000
    assert data[0xFFF0:0xFFF5] == b"\xEA\x5B\xE0\x00\xF0"      # jmp far F000:E05B
    assert data[0xFFF5:0xFFFD] == rom.BIOS_DATE
    assert data[0xFFFE] == 0xFC


def test_every_trap_is_an_int3_followed_by_code_and_resolves():
    img = image()
    bios = Bios(BoardContext())
    for name, linear in img.traps.items():
        assert img.data[linear - rom.ROM_BASE] == 0xCC, name
        assert bios.trap_service(linear) is not None, name
    assert bios.trap_service(rom.ROM_BASE + rom.DUMMY_IRET) is None
    assert bios.trap_service(0x7C00) is None


def test_service_stubs_sit_at_the_at_bios_addresses():
    img = image()
    for name, off in (("int13", 0xE3FE), ("int19", 0xE6F2), ("int16", 0xE82E),
                      ("int10", 0xF065), ("int1a", 0xFE6E), ("int08", 0xFEA5)):
        assert img.traps[name] == rom.ROM_BASE + off
        assert img.data[off + 1] in (0xCF, 0xCD)                 # iret, or int 1Ch


def test_timer_handler_calls_int1c_then_eois():
    data = image().data
    assert data[0xFEA5:0xFEAF] == bytes.fromhex("cc cd1c 50 b020 e620 58 cf")


def test_slave_irq_handlers_eoi_both_pics():
    img = image()
    off = img.vectors[0x76]
    assert img.data[off:off + 9] == bytes.fromhex("50 b020 e6a0 e620 58 cf")


def test_tables():
    data = image().data
    assert data[0xE6F5:0xE6F7] == b"\x08\x00" and data[0xE6F7] == 0xFC
    assert data[0xEFC7 + 4] == 18                                # 1.44 MB sectors per track
    assert int.from_bytes(data[0xE729 + 14:0xE729 + 16], "little") == 0x0C   # 9600 baud


def test_post_entry_sets_stack_traps_then_int19():
    data = image().data
    code = data[0xE05B:0xE070]
    assert code.startswith(bytes.fromhex("fa fc 31c0 8ed0 bc007c 8ed8 8ec0 cc fb cd19 f4 ebfd"))
