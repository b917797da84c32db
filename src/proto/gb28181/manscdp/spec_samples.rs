//! Sample bodies copied verbatim from `gb28181-features.txt` (markdown list
//! indentation removed), used by the byte-literal tests.

/// gb28181-features.txt lines 365-371.
pub(super) const KEEPALIVE: &str = r#"<?xml version="1.0"?>
<Notify>
    <CmdType>Keepalive</CmdType>
    <SN>2749</SN>
    <DeviceID>130909113319427420</DeviceID>
    <Status>OK</Status>
</Notify>
"#;

/// gb28181-features.txt lines 432-437.
pub(super) const CATALOG_QUERY_FLOW: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Query>
    <CmdType>Catalog</CmdType>
    <SN>471</SN>
    <DeviceID>130909113319427420</DeviceID>
</Query>
"#;

/// gb28181-features.txt lines 467-490.
pub(super) const CATALOG_RESPONSE_FLOW: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>1708</SN>
<DeviceID>62010201001320000393</DeviceID>
<SumNum>1</SumNum>
<DeviceList Num="1">
<Item>
<DeviceID>62010201001320000393</DeviceID>
<Name>Camera 01</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>5100000000</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>51000000002000000001</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>ON</Status>
</Item>
</DeviceList>
</Response>
"#;

/// gb28181-features.txt lines 525-533.
pub(super) const CATALOG_QUERY_FORMAT: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Query>
    <! -- 命令类型:设备信息查询(必选)-->
    <CmdType>Catalog</CmdType>
    <! -- 命令序列号(必选)，消息中的SN值用于与请求命令的匹配处理,响应命令中的SN值应使用请求命令中的SN值。--> 
    <SN>1708</SN>
    <! -- 目标设备的设备编码(必选)-->
    <DeviceID>62010201001320000393</DeviceID>
</Query>
"#;

/// gb28181-features.txt lines 539-580.
pub(super) const CATALOG_RESPONSE_FORMAT: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Response>
    <! -- 命令类型:设备目录查询(必选)-->
    <CmdType>Catalog</CmdType>
    <SN>1708</SN>
    <! -- 目标设备/区域/系统的编码,取值与目录查询请求相同(必选)-->
    <DeviceID>62010201001320000393</DeviceID>
    <! -- 查询结果总数(必选)-->
    <SumNum>1</SumNum>
    <! -- 设备目录项列表,Num 表示目录项个数，注意双引号-->
    <DeviceList Num="1">
        <Item>
            <! -- 设备/区域/系统编码(必选)-->
            <DeviceID>62010201001320000393</DeviceID>
            <! -- 设备/区域/系统名称(必选)-->
            <Name>Camera 01</Name>
            <! -- 当为设备时,设备厂商(必选)-->
            <Manufacturer>Hikvision</Manufacturer>
            <! -- 当为设备时,设备型号(必选)-->
            <Model>IP Camera</Model>
            <! -- 当为设备时,设备归属(必选)-->
            <Owner>Owner</Owner>
            <! -- 行政区域(必选)-->
            <CivilCode>5100000000</CivilCode>
            <! -- 当为设备时,安装地址(必选)-->
            <Address>Address</Address>
            <! -- 当为设备时,是否有子设备(必选)1有,0没有-->
            <Parental>0</Parental>
            <! -- 父设备/区域/系统ID(必选)-->
            <ParentID>51000000002000000001</ParentID>
            <! -- 信令安全模式(可选)缺省为0; 0:不采用;2:S/MIME 签名方式;3:S/ MIME加密签名同时采用方式;4:数字摘要方式-->
            <SafetyWay>0</SafetyWay>
            <! -- 注册方式(必选)缺省为1;1:符合IETFRFC3261标准的认证注册模 式;2:基于口令的双向认证注册模式;3:基于数字证书的双向认证注册模式-->
            <RegisterWay>1</RegisterWay>
            <! -- 保密属性(必选)缺省为0;0:不涉密,1:涉密-->
            <Secrecy>0</Secrecy>
            <! -- 设备状态(必选)-->
            <Status>ON</Status>
            ... 其他请参考协议文档
        </Item>
    </DeviceList>
</Response>
"#;

/// gb28181-features.txt lines 592-600.
pub(super) const DEVICE_INFO_QUERY: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Query>
    <! -- 命令类型:设备信息查询(必选)-->
    <CmdType>DeviceInfo</CmdType>
    <! -- 命令序列号(必选)，消息中的SN值用于与请求命令的匹配处理,响应命令中的SN值应使用请求命令中的SN值。--> 
    <SN>1708</SN>
    <! -- 目标设备的设备编码(必选)-->
    <DeviceID>62010201001320000393</DeviceID>
</Query>
"#;

/// gb28181-features.txt lines 608-642.
pub(super) const DEVICE_INFO_RESPONSE: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Response>
    <! -- 命令类型:设备目录查询(必选)-->
    <CmdType>Catalog</CmdType>
    <SN>1708</SN>

    <! -- 设备/区域/系统编码(必选)-->
    <DeviceID>62010201001320000393</DeviceID>
    <! -- 设备/区域/系统名称(必选)-->
    <Name>Camera 01</Name>
    <! -- 当为设备时,设备厂商(必选)-->
    <Manufacturer>Hikvision</Manufacturer>
    <! -- 当为设备时,设备型号(必选)-->
    <Model>IP Camera</Model>
    <! -- 当为设备时,设备归属(必选)-->
    <Owner>Owner</Owner>
    <! -- 行政区域(必选)-->
    <CivilCode>5100000000</CivilCode>
    <! -- 当为设备时,安装地址(必选)-->
    <Address>Address</Address>
    <! -- 当为设备时,是否有子设备(必选)1有,0没有-->
    <Parental>0</Parental>
    <! -- 父设备/区域/系统ID(必选)-->
    <ParentID>51000000002000000001</ParentID>
    <! -- 信令安全模式(可选)缺省为0; 0:不采用;2:S/MIME 签名方式;3:S/ MIME加密签名同时采用方式;4:数字摘要方式-->
    <SafetyWay>0</SafetyWay>
    <! -- 注册方式(必选)缺省为1;1:符合IETFRFC3261标准的认证注册模 式;2:基于口令的双向认证注册模式;3:基于数字证书的双向认证注册模式-->
    <RegisterWay>1</RegisterWay>
    <! -- 保密属性(必选)缺省为0;0:不涉密,1:涉密-->
    <Secrecy>0</Secrecy>
    <! -- 设备状态(必选)-->
    <Status>ON</Status>
    ... 其他请参考协议文档

</Response>
"#;

/// gb28181-features.txt lines 652-660.
pub(super) const DEVICE_STATUS_QUERY: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Query>
    <! -- 命令类型:设备信息查询(必选)-->
    <CmdType>DeviceStatus</CmdType>
    <! -- 命令序列号(必选)，消息中的SN值用于与请求命令的匹配处理,响应命令中的SN值应使用请求命令中的SN值。--> 
    <SN>1708</SN>
    <! -- 目标设备的设备编码(必选)-->
    <DeviceID>62010201001320000393</DeviceID>
</Query>
"#;

/// gb28181-features.txt lines 668-684.
pub(super) const DEVICE_STATUS_RESPONSE: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Response>
    <! -- 命令类型:设备目录查询(必选)-->
    <CmdType>Catalog</CmdType>
    <SN>1708</SN>

    <DeviceID>xxx</DeviceID>
	<Result>OK</Result>
	<Online>ONLINE</Online>
	<Status>OK</Status>
	<DeviceTime>2023-09-15T21:30:15</DeviceTime>
	<Alarmstatus Num="0">
	</Alarmstatus>
	<Encode>ON</Encode>
	<Record>OFF</Record>

</Response>
"#;

/// gb28181-features.txt lines 784-790.
pub(super) const PTZ_CONTROL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Control>
    <CmdType>DeviceControl</CmdType>
    <SN>130</SN>
    <DeviceID>xxx</DeviceID>
    <PTZCmd>A50F010800FA00B7</PTZCmd>
</Control>
"#;

/// gb28181-features.txt lines 810-816.
pub(super) const CONTROL_REPLY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Control>
    <CmdType>DeviceControl</CmdType>
    <SN>130</SN>
    <DeviceID>xxx</DeviceID>
    <Result>...</Result>
</Control>
"#;

/// gb28181-features.txt lines 2224-2236.
pub(super) const RECORD_INFO_QUERY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Query>
	<CmdType>RecordInfo</CmdType>
	<SN>10000</SN>
	<DeviceID>xxx</DeviceID>
	<StartTime>2023-10-14T00:00:00</StartTime>
	<EndTime>2023-10-14T23:00:00</EndTime>
	<FilePath></FilePath>
	<Address></Address>
	<Secrecy>0</Secrecy>
	<Type>all</Type>
	<RecorderID>all</RecorderID>
</Query>
"#;

/// gb28181-features.txt lines 2256-2276.
pub(super) const RECORD_INFO_RESPONSE: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Response>
	<CmdType>RecordInfo</CmdType>
	<SN>17430</SN>
	<DeviceID>xxx</DeviceID>
	<Name>Camera 01</Name>
	<SumNum>1</SumNum>
	<RecordList Num="1">
		<Item>
			<DeviceID>xxx</DeviceID>
			<Name>Camera 01</Name>
			<FilePath>file_path</FilePath>
			<Address>Address 1</Address>
			<StartTime>2023-10-14T14:15:52</StartTime>
			<EndTime>2023-10-14T14:31:28</EndTime>
			<Secrecy>0</Secrecy>
			<Type>time</Type>
			<FileSize>19396096</FileSize>
		</Item>
	</RecordList>
</Response>
"#;

/// gb28181-features.txt lines 2454-2460.
pub(super) const MEDIA_STATUS: &str = r#"<?xml version="1.0" encoding="GB2312"?>
<Notify>
<CmdType>MediaStatus</CmdType>
<SN>151</SN>
<DeviceID>xxx</DeviceID>
<NotifyType>121</NotifyType>
</Notify>
"#;

/// gb28181-features.txt lines 2756-2764.
pub(super) const BROADCAST_NOTIFY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Notify>
<CmdType>Broadcast</CmdType>
<SN>130</SN>
<!--语音输入设备的设备编码-->
<SourceID>xxx</SourceID>
<!--语音输出设备的设备编码-->
<TargetID>xxx</TargetID>
</Notify>
"#;

/// gb28181-features.txt lines 2800-2806.
pub(super) const BROADCAST_RESPONSE: &str = r#"<?xml version="1.0" encoding="GB2312" standalone="yes" ?>
<Response>
<CmdType>Broadcast</CmdType>
<SN>130</SN>
<DeviceID>xxx</DeviceID>
<Result>OK</Result>
</Response>
"#;

/// gb28181-features.txt lines 3239-3249.
pub(super) const ALARM_SUBSCRIBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Query>
<CmdType>Alarm</CmdType>
<SN>130</SN>
<DeviceID>xxx</DeviceID>
<StartAlarmPrority>0</StartAlarmPrority>
<EndAlarmPrority>0</EndAlarmPrority>
<AlarmMethod>0</AlarmMethod>
<StartTime>2023-10-24T00:00:00</StartTime>
<EndTime>2023-10-24T23:00:00</EndTime>
</Query>
"#;

/// gb28181-features.txt lines 3461-3483.
pub(super) const ALARM_NOTIFY: &str = r#"// 省略头

<?xml version="1.0" encoding="UTF-8" standalone="true"?>
<Notify>
	<CmdType>Alarm</CmdType>
	<SN>2</SN>
	<DeviceID>xxx</DeviceID>
	<AlarmPriority>1</AlarmPriority>         			报警级别
	<AlarmMethod>5</AlarmMethod>						报警方式
	<AlarmTime>2023-10-20T09:19:12</AlarmTime>			报警时间
	<AlarmDescription>视频动检</AlarmDescription>
	<AlarmInfo>11</AlarmInfo>
	<Info>
		<AlarmType>2</AlarmType>					报警类型
		<AlarmTypeParam>							报警类型参数
			<EventType>1</EventType>
		</AlarmTypeParam>
	</Info>
</Notify>

经度（Longitude）；
纬度（Latitude）；
"#;

/// gb28181-features.txt lines 3495-3501.
pub(super) const ALARM_RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
	<CmdType>Alarm</CmdType>
	<SN>2</SN>
	<DeviceID>xxx</DeviceID>
	<Result>OK</Result>
</Response>
"#;
