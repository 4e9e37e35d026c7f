package io.p2plab.qmp;

/**
 * QEMU answered a command with {"error": {"class": ..., "desc": ...}}. Known classes have their own
 * subclasses so callers can catch them by type; {@link #errorClass()} always carries the raw class.
 */
public class QmpErrorException extends QmpException {
    private final String errorClass;
    private final String description;
    private final String command;

    public QmpErrorException(String command, String errorClass, String description) {
        super((command == null ? "QMP error" : command) + ": " + errorClass + ": " + description);
        this.command = command;
        this.errorClass = errorClass;
        this.description = description;
    }

    public String errorClass() { return errorClass; }
    public String description() { return description; }
    public String command() { return command; }

    public static QmpErrorException of(String command, String cls, String desc) {
        return switch (cls == null ? "" : cls) {
            case "GenericError" -> new GenericError(command, desc);
            case "CommandNotFound" -> new CommandNotFound(command, desc);
            case "DeviceNotFound" -> new DeviceNotFound(command, desc);
            case "DeviceNotActive" -> new DeviceNotActive(command, desc);
            case "KVMMissingCap" -> new KvmMissingCap(command, desc);
            default -> new QmpErrorException(command, cls, desc);
        };
    }

    public static final class GenericError extends QmpErrorException {
        public GenericError(String command, String desc) { super(command, "GenericError", desc); }
    }
    public static final class CommandNotFound extends QmpErrorException {
        public CommandNotFound(String command, String desc) { super(command, "CommandNotFound", desc); }
    }
    public static final class DeviceNotFound extends QmpErrorException {
        public DeviceNotFound(String command, String desc) { super(command, "DeviceNotFound", desc); }
    }
    public static final class DeviceNotActive extends QmpErrorException {
        public DeviceNotActive(String command, String desc) { super(command, "DeviceNotActive", desc); }
    }
    public static final class KvmMissingCap extends QmpErrorException {
        public KvmMissingCap(String command, String desc) { super(command, "KVMMissingCap", desc); }
    }
}
