//! Enumerated MANSCDP values (CmdType, resultType, statusType, ...). Each
//! enumeration keeps unknown values verbatim in `Other`, so decoding never
//! loses what a peer sent; an unknown value gives finding `manscdp.value-out-of-set`
//! and a value matched only case-insensitively gives `manscdp.value-case`.

use super::fields::xml_enum;

xml_enum! {
    /// `CmdType`: the command a message carries (设备查询, 设备控制, 保活, 报警事件通知, ...).
    pub enum CmdType {
        Keepalive = "Keepalive",
        Catalog = "Catalog",
        DeviceInfo = "DeviceInfo",
        DeviceStatus = "DeviceStatus",
        RecordInfo = "RecordInfo",
        ConfigDownload = "ConfigDownload",
        PresetQuery = "PresetQuery",
        DeviceControl = "DeviceControl",
        DeviceConfig = "DeviceConfig",
        Alarm = "Alarm",
        MediaStatus = "MediaStatus",
        Broadcast = "Broadcast",
        UploadSnapShotFinished = "UploadSnapShotFinished",
        MobilePosition = "MobilePosition",
    }
}

xml_enum! {
    /// `tg:resultType`: OK or ERROR (Keepalive Status, Result of replies).
    pub enum ResultType {
        Ok = "OK",
        Error = "ERROR",
    }
}

xml_enum! {
    /// `tg:statusType` as used by catalog items (Status) and DeviceStatus Encode/Record.
    pub enum OnOff {
        On = "ON",
        Off = "OFF",
    }
}

xml_enum! {
    /// DeviceStatus `Online`.
    pub enum Online {
        Online = "ONLINE",
        Offline = "OFFLINE",
    }
}

xml_enum! {
    /// Catalog change `Event` of a catalog notification item.
    pub enum CatalogEvent {
        On = "ON",
        Off = "OFF",
        VideoLost = "VLOST",
        Defect = "DEFECT",
        Add = "ADD",
        Delete = "DEL",
        Update = "UPDATE",
    }
}

xml_enum! {
    /// DeviceStatus alarm item `DutyStatus`.
    pub enum DutyStatus {
        OnDuty = "ONDUTY",
        OffDuty = "OFFDUTY",
        Alarm = "ALARM",
    }
}

xml_enum! {
    /// RecordInfo `Type`: time, alarm, manual or all.
    pub enum RecordType {
        Time = "time",
        Alarm = "alarm",
        Manual = "manual",
        All = "all",
    }
}

xml_enum! {
    /// DeviceControl `RecordCmd`.
    pub enum RecordCmd {
        Record = "Record",
        StopRecord = "StopRecord",
    }
}

xml_enum! {
    /// DeviceControl `GuardCmd` (报警布防/撤防).
    pub enum GuardCmd {
        SetGuard = "SetGuard",
        ResetGuard = "ResetGuard",
    }
}

xml_enum! {
    /// DeviceControl `AlarmCmd` (报警复位).
    pub enum AlarmCmd {
        ResetAlarm = "ResetAlarm",
    }
}

xml_enum! {
    /// DeviceControl `TeleBoot` (远程启动).
    pub enum TeleBoot {
        Boot = "Boot",
    }
}

xml_enum! {
    /// DeviceControl `IFameCmd` (强制关键帧).
    pub enum IFrameCmd {
        Send = "Send",
    }
}
