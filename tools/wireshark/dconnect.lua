-- Wireshark dissector for dconnect's ExpEther frames (EtherType 0x88b5, inside an 802.1Q tag):
-- the 12-byte ExpEther header (src/expether/pdu-codec.ts), a NAK's missing range, and the PCIe TLP it carries
-- (src/pcie/tlp-codec.ts, PCIe Base Specification section 2.2).
--   wireshark -X lua_script:tools/wireshark/dconnect.lua move.pcap
--   tshark -X lua_script:tools/wireshark/dconnect.lua -r move.pcap -T fields -e dconnect.tlp.type
local p = Proto("dconnect", "dconnect ExpEther")

local KINDS = { [1] = "tlp", [2] = "ack", [3] = "routes", [4] = "nak" }
local f = p.fields
f.version = ProtoField.uint8("dconnect.version", "Version")
f.kind = ProtoField.string("dconnect.kind", "Kind")
f.flags = ProtoField.uint8("dconnect.flags", "Flags", base.HEX)
f.length = ProtoField.uint16("dconnect.length", "Body length")
f.seq = ProtoField.uint32("dconnect.seq", "Sequence")
f.ack = ProtoField.uint32("dconnect.ack", "Cumulative ack")
f.nak_first = ProtoField.uint32("dconnect.nak.first", "First missing sequence")
f.nak_last = ProtoField.uint32("dconnect.nak.last", "Last missing sequence")
f.tlp_type = ProtoField.string("dconnect.tlp.type", "TLP type")
f.tlp_length = ProtoField.uint16("dconnect.tlp.length_dw", "Length (DW)")
f.tlp_requester = ProtoField.uint16("dconnect.tlp.requester", "Requester ID", base.HEX)
f.tlp_tag = ProtoField.uint8("dconnect.tlp.tag", "Tag")
f.tlp_first_be = ProtoField.uint8("dconnect.tlp.first_be", "First DW BE", base.HEX)
f.tlp_last_be = ProtoField.uint8("dconnect.tlp.last_be", "Last DW BE", base.HEX)
f.tlp_address = ProtoField.uint64("dconnect.tlp.address", "Address", base.HEX)
f.tlp_completer = ProtoField.uint16("dconnect.tlp.completer", "Completer ID", base.HEX)
f.tlp_status = ProtoField.uint8("dconnect.tlp.status", "Completion status")
f.tlp_byte_count = ProtoField.uint16("dconnect.tlp.byte_count", "Byte count")
f.tlp_payload_len = ProtoField.uint32("dconnect.tlp.payload_len", "Payload bytes")
f.tlp_payload = ProtoField.bytes("dconnect.tlp.payload", "Payload")

-- Fmt/Type (byte 0) to the model's kinds, and the header length in bytes.
local TYPES = {
  [0x00] = { "MRd", 12 }, [0x20] = { "MRd", 16 }, [0x40] = { "MWr", 12 }, [0x60] = { "MWr", 16 },
  [0x04] = { "CfgRd0", 12 }, [0x44] = { "CfgWr0", 12 }, [0x05] = { "CfgRd1", 12 }, [0x45] = { "CfgWr1", 12 },
  [0x0a] = { "Cpl", 12 }, [0x4a] = { "CplD", 12 },
}

local function dissect_tlp(buf, tree)
  local t = TYPES[buf(0, 1):uint()]
  if not t then
    tree:add_expert_info(PI_MALFORMED, PI_ERROR, string.format("unknown Fmt/Type 0x%02x", buf(0, 1):uint()))
    return nil
  end
  local name, hdr = t[1], t[2]
  local st = tree:add(p, buf, "TLP " .. name)
  st:add(f.tlp_type, name)
  local len = bit.band(buf(2, 2):uint(), 0x3ff)
  if len == 0 and (name == "MWr" or name == "MRd" or name == "CplD") then len = 1024 end
  st:add(f.tlp_length, buf(2, 2), len)
  if name == "Cpl" or name == "CplD" then
    st:add(f.tlp_completer, buf(4, 2))
    st:add(f.tlp_status, buf(6, 1), bit.rshift(buf(6, 1):uint(), 5))
    local bc = bit.band(buf(6, 2):uint(), 0xfff)
    if bc == 0 then bc = 4096 end
    st:add(f.tlp_byte_count, buf(6, 2), bc)
    st:add(f.tlp_requester, buf(8, 2))
    st:add(f.tlp_tag, buf(10, 1))
  else
    st:add(f.tlp_requester, buf(4, 2))
    st:add(f.tlp_tag, buf(6, 1))
    st:add(f.tlp_last_be, buf(7, 1), bit.rshift(buf(7, 1):uint(), 4))
    st:add(f.tlp_first_be, buf(7, 1), bit.band(buf(7, 1):uint(), 0xf))
    if name == "MRd" or name == "MWr" then
      if hdr == 16 then
        st:add(f.tlp_address, buf(8, 8), buf(8, 8):uint64():band(UInt64(0xfffffffc, 0xffffffff)))
      else
        st:add(f.tlp_address, buf(8, 4), UInt64(bit.band(buf(8, 4):uint(), 0xfffffffc)))
      end
    end
  end
  local payload = buf:len() - hdr
  st:add(f.tlp_payload_len, payload)
  if payload > 0 then st:add(f.tlp_payload, buf(hdr, payload)) end
  return name
end

function p.dissector(buf, pinfo, tree)
  if buf:len() < 12 then return 0 end
  pinfo.cols.protocol = "dconnect"
  local t = tree:add(p, buf(0, 12), "ExpEther")
  local v = buf(0, 1):uint()
  local kind = KINDS[bit.band(v, 0x0f)] or string.format("unknown (%d)", bit.band(v, 0x0f))
  t:add(f.version, buf(0, 1), bit.rshift(v, 4))
  t:add(f.kind, buf(0, 1), kind)
  t:add(f.flags, buf(1, 1))
  local body = buf(2, 2):uint()
  t:add(f.length, buf(2, 2))
  t:add(f.seq, buf(4, 4))
  t:add(f.ack, buf(8, 4))
  local info = kind .. " seq " .. buf(4, 4):uint() .. " ack " .. buf(8, 4):uint()
  -- A NAK (selective repeat): its 8-byte body names the missing frames the sender is to resend.
  if kind == "nak" and body == 8 and buf:len() >= 20 then
    local nt = tree:add(p, buf(12, 8), "NAK")
    nt:add(f.nak_first, buf(12, 4))
    nt:add(f.nak_last, buf(16, 4))
    info = string.format("nak %d..%d ack %d", buf(12, 4):uint(), buf(16, 4):uint(), buf(8, 4):uint())
  end
  if kind == "tlp" and body > 0 and buf:len() >= 12 + body then
    local name = dissect_tlp(buf(12, body), tree)
    if name then info = name .. " (" .. info .. ")" end
  end
  pinfo.cols.info = info
  return buf:len()
end

DissectorTable.get("ethertype"):add(0x88b5, p)

-- The block transfer protocol of the NICs' networks (EtherType 0x88b6, src/net/block-transfer.ts):
-- a 16-byte header (type, flags, stream, sequence, value, reserved; big-endian), then a DATA frame's payload.
--   tshark -X lua_script:tools/wireshark/dconnect.lua -r nic.pcap -T fields -e dconnect_bt.type -e dconnect_bt.seq
local bt = Proto("dconnect_bt", "dconnect block transfer")
local BT_TYPES = { [1] = "DATA", [2] = "CREDIT" }
local g = bt.fields
g.type = ProtoField.string("dconnect_bt.type", "Type")
g.flags = ProtoField.uint8("dconnect_bt.flags", "Flags", base.HEX)
g.stream = ProtoField.uint16("dconnect_bt.stream", "Stream")
g.seq = ProtoField.uint32("dconnect_bt.seq", "Sequence")
g.value = ProtoField.uint32("dconnect_bt.value", "Payload bytes (DATA) / credit limit (CREDIT)")
g.payload_len = ProtoField.uint32("dconnect_bt.payload_len", "Payload bytes")
g.payload = ProtoField.bytes("dconnect_bt.payload", "Payload")

function bt.dissector(buf, pinfo, tree)
  if buf:len() < 16 then return 0 end
  pinfo.cols.protocol = "DCONNECT-BT"
  local kind = BT_TYPES[buf(0, 1):uint()] or string.format("unknown(%d)", buf(0, 1):uint())
  local t = tree:add(bt, buf(0, 16), "dconnect block transfer " .. kind)
  t:add(g.type, buf(0, 1), kind)
  t:add(g.flags, buf(1, 1))
  t:add(g.stream, buf(2, 2))
  t:add(g.seq, buf(4, 4))
  t:add(g.value, buf(8, 4))
  local n = buf:len() - 16
  -- A CREDIT frame is padded to Ethernet's minimum; only DATA carries payload.
  if kind == "DATA" then
    n = math.min(n, buf(8, 4):uint())
    t:add(g.payload_len, n)
    if n > 0 then t:add(g.payload, buf(16, n)) end
  else
    t:add(g.payload_len, 0)
  end
  pinfo.cols.info = string.format("%s stream %d seq %d value %d", kind, buf(2, 2):uint(), buf(4, 4):uint(), buf(8, 4):uint())
  return buf:len()
end

DissectorTable.get("ethertype"):add(0x88b6, bt)
