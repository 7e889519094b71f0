/*
 * Plays the CUCM Connector's side of the wire over OpenWire, the way the vendor's Java service does,
 * so the interop test proves what a real JMS peer sees from cucmconn's STOMP client and back.
 *
 * Usage: java -cp <classes>:<jars> ConnectorPeer <brokerUrl> <queue> <replyTemplateBase64> <max> <timeoutSeconds> [quiet]
 *
 * Consumes <queue>; for each message prints one JSON line on stdout (ASCII only: every non-ASCII
 * UTF-16 unit is escaped as \\uXXXX so no locale can mangle it), then, if JMSReplyTo is set,
 * replies there with a TextMessage: no JMSType, the same JMSCorrelationID, and the body
 * <replyTemplate> with "{text}" replaced by the received text. The template travels in base64
 * because argv is decoded with the JVM's locale charset, which may not be UTF-8.
 * A body JMS cannot decode is reported with "error" (the exception's class) and not answered.
 * Prints {"event":"ready"} once consuming, and {"event":"done","handled":N} before exiting.
 * With "quiet" (the round-trip benchmark) only those two lines are printed: a line per message
 * would make the reader, not the peer, the bottleneck.
 */

import java.nio.charset.StandardCharsets;
import java.util.Base64;

import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.Destination;
import javax.jms.JMSException;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.MessageProducer;
import javax.jms.Queue;
import javax.jms.Session;
import javax.jms.TextMessage;
import javax.jms.Topic;

import org.apache.activemq.ActiveMQConnectionFactory;

public final class ConnectorPeer {

    private ConnectorPeer() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5 && !(args.length == 6 && "quiet".equals(args[5]))) {
            System.err.println("usage: ConnectorPeer brokerUrl queue replyTemplateBase64 max timeoutSeconds [quiet]");
            System.exit(2);
        }
        boolean quiet = args.length == 6;
        String template = new String(Base64.getDecoder().decode(args[2]), StandardCharsets.UTF_8);
        int max = Integer.parseInt(args[3]);
        long deadline = System.currentTimeMillis() + Long.parseLong(args[4]) * 1000L;

        Connection connection = new ActiveMQConnectionFactory(args[0]).createConnection();
        int handled = 0;
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(session.createQueue(args[1]));
            MessageProducer producer = session.createProducer(null);
            producer.setDeliveryMode(DeliveryMode.NON_PERSISTENT);
            emit("{\"event\":\"ready\"}");
            while (handled < max) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                Message message = consumer.receive(Math.min(left, 500L));
                if (message == null) {
                    continue;
                }
                handled++;
                String text;
                try {
                    text = bodyText(message);
                } catch (JMSException unreadable) {
                    // What ActiveMQ 5.17 does to 4-byte UTF-8 from STOMP (AMQ-8398): report, no reply.
                    Throwable cause = unreadable.getCause() == null ? unreadable : unreadable.getCause();
                    if (!quiet) {
                        emit(describe(message, null, cause.getClass().getSimpleName()));
                    }
                    continue;
                }
                if (!quiet) {
                    emit(describe(message, text, null));
                }
                reply(session, producer, message, template.replace("{text}", text == null ? "" : text));
            }
        } finally {
            emit("{\"event\":\"done\",\"handled\":" + handled + "}");
            connection.close();
        }
    }

    private static void reply(Session session, MessageProducer producer, Message request, String body)
            throws JMSException {
        Destination replyTo = request.getJMSReplyTo();
        if (replyTo == null) {
            return;
        }
        TextMessage answer = session.createTextMessage(body);
        answer.setJMSCorrelationID(request.getJMSCorrelationID());
        producer.send(replyTo, answer);
    }

    private static String bodyText(Message message) throws JMSException {
        if (message instanceof TextMessage) {
            return ((TextMessage) message).getText();
        }
        if (message instanceof BytesMessage) {
            BytesMessage bytes = (BytesMessage) message;
            byte[] data = new byte[(int) bytes.getBodyLength()];
            bytes.readBytes(data);
            return new String(data, StandardCharsets.UTF_8);
        }
        return null;
    }

    private static String describe(Message message, String text, String error) throws JMSException {
        String kind = message instanceof TextMessage ? "TextMessage"
                : message instanceof BytesMessage ? "BytesMessage"
                : message.getClass().getSimpleName();
        StringBuilder out = new StringBuilder(256);
        out.append("{\"event\":\"message\"");
        field(out, "class", kind);
        field(out, "JMSType", message.getJMSType());
        field(out, "JMSCorrelationID", message.getJMSCorrelationID());
        field(out, "JMSReplyTo", stompName(message.getJMSReplyTo()));
        field(out, "JMSDestination", stompName(message.getJMSDestination()));
        out.append(",\"JMSExpiration\":").append(message.getJMSExpiration());
        out.append(",\"JMSDeliveryMode\":").append(message.getJMSDeliveryMode());
        out.append(",\"JMSPriority\":").append(message.getJMSPriority());
        out.append(",\"JMSTimestamp\":").append(message.getJMSTimestamp());
        out.append(",\"receivedAt\":").append(System.currentTimeMillis());
        field(out, "text", text);
        field(out, "error", error);
        return out.append('}').toString();
    }

    private static String stompName(Destination destination) throws JMSException {
        if (destination instanceof Topic) {
            return "/topic/" + ((Topic) destination).getTopicName();
        }
        if (destination instanceof Queue) {
            return "/queue/" + ((Queue) destination).getQueueName();
        }
        return destination == null ? null : destination.toString();
    }

    private static void field(StringBuilder out, String name, String value) {
        out.append(",\"").append(name).append("\":");
        if (value == null) {
            out.append("null");
            return;
        }
        out.append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }

    private static synchronized void emit(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
